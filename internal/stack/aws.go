package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// The static dummy credentials and region of the local stack. The emulators
// accept any credentials; the SDK only needs some to sign with.
const (
	Region          = "us-east-1"
	AccessKeyID     = "ferry"
	SecretAccessKey = "ferry-local-secret"
)

// AWSConfig returns an aws.Config with the stack's static credentials and
// region. It reads nothing from the environment or ~/.aws, and sets no
// endpoint: pass it with BaseEndpoint, as DynamoClient and KinesisClient do.
func (s *Stack) AWSConfig() aws.Config {
	return awsConfig(s.Region)
}

func awsConfig(region string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
	}
}

// DynamoClient is a DynamoDB client for the stack's dynalite.
func (s *Stack) DynamoClient() *dynamodb.Client {
	return newDynamo(s.Region, s.DynamoEndpoint)
}

// KinesisClient is a Kinesis client for the stack's kinesalite.
func (s *Stack) KinesisClient() *kinesis.Client {
	return newKinesis(s.Region, s.KinesisEndpoint)
}

func newDynamo(region, endpoint string, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(awsConfig(region),
		append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) }}, opts...)...)
}

func newKinesis(region, endpoint string, opts ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.NewFromConfig(awsConfig(region),
		append([]func(*kinesis.Options){func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) }}, opts...)...)
}

// dynamoPing asks dynalite for one table name; one attempt, no SDK retries.
func dynamoPing(ctx context.Context, endpoint string) error {
	c := newDynamo(Region, endpoint, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
	return err
}

// kinesisPing asks kinesalite for one stream name; one attempt, no SDK retries.
func kinesisPing(ctx context.Context, endpoint string) error {
	c := newKinesis(Region, endpoint, func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
	_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
	return err
}

// Env returns the variables that point ferry and the AWS SDKs/CLI at the
// stack, as KEY=VALUE strings: FERRY_SOURCE (the pagila demo database),
// AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_KINESIS, AWS_REGION,
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (static dummy credentials).
func (s *Stack) Env() []string {
	return []string{
		"FERRY_SOURCE=" + s.SourceURL,
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.DynamoEndpoint,
		"AWS_ENDPOINT_URL_KINESIS=" + s.KinesisEndpoint,
		"AWS_REGION=" + s.Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
	}
}

// EnvFile is the path of the file WriteEnvFile writes.
func (s *Stack) EnvFile() string { return filepath.Join(s.Dir, "env") }

// WriteEnvFile writes Env to dir/env as `export KEY='VALUE'` lines, for
// `source .local/env`.
func (s *Stack) WriteEnvFile() error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	return writeFileAtomic(s.EnvFile(), []byte(s.EnvScript()), 0o644)
}

// EnvScript is the env file's content: a comment and `export KEY='VALUE'` lines.
func (s *Stack) EnvScript() string {
	var b strings.Builder
	b.WriteString("# ferry local stack: source this file. Written by `make up` (internal/stack).\n")
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	return b.String()
}
