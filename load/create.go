package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ActiveTimeout bounds the wait for one table or stream to become ACTIVE.
const ActiveTimeout = 5 * time.Minute

// pollBackoff paces DescribeTable/DescribeStreamSummary polling; the
// context (and ActiveTimeout) bound it.
func pollBackoff() Backoff {
	return Backoff{Base: 50 * time.Millisecond, Max: 2 * time.Second, MaxAttempts: -1}
}

// KeySchema names a key's attributes, all of type S. SK may be "".
type KeySchema struct{ PK, SK string }

func (k KeySchema) String() string {
	if k.SK == "" {
		return fmt.Sprintf("(PK %s)", k.PK)
	}
	return fmt.Sprintf("(PK %s, SK %s)", k.PK, k.SK)
}

// TableSpec describes a table ferry writes to.
type TableSpec struct {
	Name string
	Key  KeySchema
	GSIs []GSISpec
}

// GSISpec describes a global secondary index (projection ALL).
type GSISpec struct {
	Name string
	Key  KeySchema
}

// EnsureTables creates the missing tables (on-demand, GSIs with projection
// ALL) and waits until every table is ACTIVE. An existing table whose key
// schema (or a GSI's key schema) differs from its spec, or that lacks a GSI
// of its spec, is an error naming the table and what differs; every table is
// checked and the problems are joined. Safe to call again and concurrently.
func EnsureTables(ctx context.Context, client *dynamodb.Client, specs []TableSpec) error {
	var errs []error
	for _, spec := range specs {
		if err := ensureTable(ctx, client, spec); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ensureTable(ctx context.Context, client *dynamodb.Client, spec TableSpec) error {
	if spec.Name == "" || spec.Key.PK == "" {
		return fmt.Errorf("table %q: %w: name and partition key are required", spec.Name, ErrInvalidRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, ActiveTimeout)
	defer cancel()
	desc, err := describeTable(ctx, client, spec.Name)
	if err != nil {
		return err
	}
	if desc == nil {
		_, err := client.CreateTable(ctx, createTableInput(spec))
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", spec.Name, err)
		}
		if desc, err = describeTable(ctx, client, spec.Name); err != nil {
			return err
		}
	}
	for attempt := 1; !tableReady(desc); attempt++ {
		if desc != nil && desc.TableStatus == types.TableStatusDeleting {
			return fmt.Errorf("table %s is being deleted", spec.Name)
		}
		if err := pollBackoff().Sleep(ctx, attempt); err != nil {
			return fmt.Errorf("table %s: waiting for it to be ACTIVE: %w", spec.Name, err)
		}
		if desc, err = describeTable(ctx, client, spec.Name); err != nil {
			return err
		}
	}
	return checkTable(spec, desc)
}

// tableReady reports whether a table and all its GSIs are ACTIVE.
func tableReady(desc *types.TableDescription) bool {
	if desc == nil || desc.TableStatus != types.TableStatusActive {
		return false
	}
	for _, g := range desc.GlobalSecondaryIndexes {
		if g.IndexStatus != "" && g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// describeTable returns nil, nil when the table does not exist.
func describeTable(ctx context.Context, client *dynamodb.Client, name string) (*types.TableDescription, error) {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", name, err)
	}
	return out.Table, nil
}

func createTableInput(spec TableSpec) *dynamodb.CreateTableInput {
	var attrs []types.AttributeDefinition
	define := func(name string) {
		if name == "" || slices.ContainsFunc(attrs, func(a types.AttributeDefinition) bool { return *a.AttributeName == name }) {
			return
		}
		attrs = append(attrs, types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS})
	}
	define(spec.Key.PK)
	define(spec.Key.SK)
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(spec.Name),
		KeySchema:   keySchemaElements(spec.Key),
		BillingMode: types.BillingModePayPerRequest,
	}
	for _, g := range spec.GSIs {
		define(g.Key.PK)
		define(g.Key.SK)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(g.Name),
			KeySchema:  keySchemaElements(g.Key),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		})
	}
	in.AttributeDefinitions = attrs
	return in
}

func keySchemaElements(k KeySchema) []types.KeySchemaElement {
	ks := []types.KeySchemaElement{{AttributeName: aws.String(k.PK), KeyType: types.KeyTypeHash}}
	if k.SK != "" {
		ks = append(ks, types.KeySchemaElement{AttributeName: aws.String(k.SK), KeyType: types.KeyTypeRange})
	}
	return ks
}

// actualKey reads a key schema and whether its attributes are all type S.
func actualKey(ks []types.KeySchemaElement, defs []types.AttributeDefinition) (KeySchema, bool) {
	var k KeySchema
	for _, e := range ks {
		switch e.KeyType {
		case types.KeyTypeHash:
			k.PK = aws.ToString(e.AttributeName)
		case types.KeyTypeRange:
			k.SK = aws.ToString(e.AttributeName)
		}
	}
	allS := true
	for _, d := range defs {
		name := aws.ToString(d.AttributeName)
		if (name == k.PK || name == k.SK) && d.AttributeType != types.ScalarAttributeTypeS {
			allS = false
		}
	}
	return k, allS
}

// checkTable compares an existing table with its spec.
func checkTable(spec TableSpec, desc *types.TableDescription) error {
	var problems []string
	if k, allS := actualKey(desc.KeySchema, desc.AttributeDefinitions); k != spec.Key || !allS {
		problems = append(problems, fmt.Sprintf("key schema is %s%s, spec wants %s (all type S)", k, typeNote(allS), spec.Key))
	}
	var missing []string
	for _, g := range spec.GSIs {
		i := slices.IndexFunc(desc.GlobalSecondaryIndexes, func(d types.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(d.IndexName) == g.Name
		})
		if i < 0 {
			missing = append(missing, g.Name)
			continue
		}
		k, allS := actualKey(desc.GlobalSecondaryIndexes[i].KeySchema, desc.AttributeDefinitions)
		if k != g.Key || !allS {
			problems = append(problems, fmt.Sprintf("GSI %s key schema is %s%s, spec wants %s", g.Name, k, typeNote(allS), g.Key))
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "missing GSIs: "+strings.Join(missing, ", "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("table %s exists but does not match: %s", spec.Name, strings.Join(problems, "; "))
	}
	return nil
}

func typeNote(allS bool) string {
	if allS {
		return ""
	}
	return " (not all type S)"
}
