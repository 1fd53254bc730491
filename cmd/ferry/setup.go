package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

// compiled is a mapping checked against the live source schema.
type compiled struct {
	mapping *mappings.Mapping
	tables  map[string]*extract.Table
	plan    *transform.Plan
}

// loadPlan parses the mapping file, reads the source catalogue and compiles the
// mapping against it. Every problem is a usage error (exit 2) and nothing has
// been written when it returns one.
func loadPlan(ctx context.Context, source, mappingPath string) (*compiled, error) {
	m, err := mappings.Load(mappingPath)
	if err != nil {
		return nil, usageError{fmt.Errorf("mapping %s:\n%w", mappingPath, err)}
	}
	tables, err := readCatalog(ctx, source)
	if err != nil {
		return nil, err
	}
	m, err = expandPatterns(m, tables)
	if err != nil {
		return nil, usageError{fmt.Errorf("mapping %s:\n%w", mappingPath, err)}
	}
	plan, err := transform.Compile(m, tables)
	if err != nil {
		return nil, usageError{fmt.Errorf("mapping %s does not fit the source database:\n%w", mappingPath, err)}
	}
	return &compiled{mapping: m, tables: tables, plan: plan}, nil
}

// expandPatterns writes out the mapping's pattern entries for the source's
// tables ("public.*": one entry per table it maps); a matching table
// without a primary key cannot be mapped and is named in a warning.
func expandPatterns(m *mappings.Mapping, tables map[string]*extract.Table) (*mappings.Mapping, error) {
	pks := make(map[string][]string, len(tables))
	for n, t := range tables {
		pks[n] = t.PKNames()
	}
	out, noKey, err := m.Expand(pks)
	for _, n := range noKey {
		slog.Warn("a table matches a pattern entry of the mapping but has no primary key: not migrated", "table", n)
	}
	return out, err
}

func readCatalog(ctx context.Context, source string) (map[string]*extract.Table, error) {
	conn, err := extract.Connect(ctx, source)
	if err != nil {
		return nil, usageError{err}
	}
	defer conn.Close(context.Background())
	tables, err := extract.LoadTables(ctx, conn)
	if err != nil {
		return nil, usageError{err}
	}
	return tables, nil
}

// awsClients builds DynamoDB and Kinesis clients from the standard AWS chain
// (environment, shared config, SSO, IMDS; AWS_ENDPOINT_URL_* for endpoints).
// The SDK owns retries of transport errors and throttled whole requests.
// apiOptions are added to both clients' middleware stacks (metrics).
func awsClients(ctx context.Context, apiOptions ...func(*middleware.Stack) error) (*dynamodb.Client, *kinesis.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(newRetryer), config.WithHTTPClient(newHTTPClient()))
	if err != nil {
		return nil, nil, usagef("AWS configuration: %v", err)
	}
	cfg.APIOptions = append(cfg.APIOptions, apiOptions...)
	if cfg.Region == "" {
		return nil, nil, usagef("AWS configuration: no region (set AWS_REGION or a profile's region)")
	}
	return dynamodb.NewFromConfig(cfg), kinesis.NewFromConfig(cfg), nil
}

// maxConnsPerHost is how many idle connections ferry keeps to each endpoint.
// The SDK keeps 10, fewer than ferry's concurrent requests (16 sync apply
// workers, 8 backfill writers, Kinesis beside them): every request above
// ten then closed its connection after use and the next one dialled again.
const maxConnsPerHost = 64

// newHTTPClient is the SDK's default HTTP client with maxConnsPerHost idle
// connections per host.
func newHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = maxConnsPerHost
	})
}

// newRetryer is the CLI's AWS retryer: 10 attempts, the SDK's backoff cap,
// no client-side retry quota (see load.NewSDKRetryer).
func newRetryer() aws.Retryer { return load.NewSDKRetryer(10, 0) }
