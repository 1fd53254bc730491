package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
)

// ferry shadow after a backfill and a synced workload: the sixteen access
// patterns of pagila.yaml agree (sync still running: samples re-read after
// its checkpoint); once one rental's GSI sort key is damaged in DynamoDB, the
// customer's rentals pattern differs (exit 1), naming the pattern, the
// parameter and the item.
func TestShadowReads(t *testing.T) {
	t.Parallel()
	e := newBackfillEnv(t)
	ctx := t.Context()
	tmFerry(ctx, t, 0, "backfill", e.args()...)
	ctl := load.NewControlStore(e.st.DynamoClient(), e.control)
	p := e.startSync(t)
	e.waitStreaming(ctx, t)
	stop := startWorkload(ctx, t, e, 30, 79)
	waitApplied(ctx, t, ctl, e.slot, 100)
	stop()
	shadow := func(code int, extra ...string) string {
		t.Helper()
		args := append([]string{"shadow", "--source", e.db, "--mapping", e.mapping, "--slot", e.slot, "--control-table", e.control}, extra...)
		return tmFerry(ctx, t, code, "shadow", args...)
	}
	out := shadow(0, "--samples", "8", "--seed", "7")
	for _, name := range []string{"customer_profile", "customer_rentals", "customer_everything", "film_with_cast", "store_people", "payment_by_id"} {
		if !strings.Contains(out, name) {
			t.Errorf("the report lacks pattern %s:\n%s", name, out)
		}
	}
	if strings.Count(out, "\n") < 17 {
		t.Errorf("want a line per pattern (16):\n%s", out)
	}

	// Damage one rental's gsi1sk: its customer's rentals come back wrong.
	var rental, customer int64
	conn, err := extract.Connect(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(ctx, "SELECT rental_id, customer_id FROM rental ORDER BY rental_id LIMIT 1 OFFSET 100").Scan(&rental, &customer)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.st.DynamoClient().UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.target),
		Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("RENTAL#%d", rental)}, "sk": &types.AttributeValueMemberS{Value: "RENTAL"}},
		UpdateExpression:          aws.String("SET gsi1sk = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "RENTAL#1999-01-01 00:00:00+00#damaged"}}})
	if err != nil {
		t.Fatal(err)
	}
	out = shadow(1, "--patterns", "customer_rentals,customer_profile", "--samples", "1000", "--format", "markdown")
	for _, want := range []string{"`customer_rentals` differs for c=" + fmt.Sprint(customer), fmt.Sprintf("RENTAL#%d", rental), "differences"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "`customer_profile` differs") {
		t.Errorf("customer_profile is not damaged:\n%s", out)
	}
	p.stop(t)
}
