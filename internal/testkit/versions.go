package testkit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
)

// WatchVersions polls a fixed set of Pagila items of table — films and
// customers 1..n (FILM#i/FILM and CUSTOMER#i/PROFILE), which the workload
// edits — every 100 ms with strongly consistent reads, and records every item
// whose _version went backwards or could not be parsed. It returns at once;
// the returned stop ends the polling and returns what it recorded. Failed
// reads are skipped (the next poll tries again). Call stop exactly once.
func WatchVersions(ctx context.Context, client *dynamodb.Client, table string, n int) (stop func() []string) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan []string, 1)
	var keys []map[string]types.AttributeValue
	for i := 1; i <= n; i++ {
		keys = append(keys,
			map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "FILM#" + strconv.Itoa(i)}, "sk": &types.AttributeValueMemberS{Value: "FILM"}},
			map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "CUSTOMER#" + strconv.Itoa(i)}, "sk": &types.AttributeValueMemberS{Value: "PROFILE"}})
	}
	go func() {
		seen := map[string]extract.Position{}
		var regress []string
		for ctx.Err() == nil {
			for start := 0; start < len(keys); start += 100 {
				out, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
					table: {Keys: keys[start:min(start+100, len(keys))], ConsistentRead: aws.Bool(true)}}})
				if err != nil {
					continue
				}
				for _, it := range out.Responses[table] {
					id := it["pk"].(*types.AttributeValueMemberS).Value
					v, err := extract.ParseVersion(it["_version"].(*types.AttributeValueMemberN).Value)
					if err != nil {
						regress = append(regress, fmt.Sprintf("%s: bad _version: %v", id, err))
						continue
					}
					if prev, ok := seen[id]; ok && v.Less(prev) {
						regress = append(regress, fmt.Sprintf("%s went back from version %s to %s", id, prev.Version(), v.Version()))
					}
					seen[id] = v
				}
			}
			select { // poll interval: dynalite is shared by the parallel tests
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
		done <- regress
	}()
	return func() []string { cancel(); return <-done }
}
