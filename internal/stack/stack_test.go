package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kt "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5"
)

func randName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func TestUpReusesRunningStack(t *testing.T) {
	s1 := ForTest(t)
	s2, err := Shared(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Reused {
		t.Error("second Up started the stack again, want reuse")
	}
	if s1.PGPort != s2.PGPort || s1.DynamoPort != s2.DynamoPort || s1.KinesisPort != s2.KinesisPort {
		t.Errorf("ports changed: %+v then %+v", s1, s2)
	}
	if s1.PGPID != s2.PGPID || s1.DynamoPID != s2.DynamoPID || s1.KinesisPID != s2.KinesisPID {
		t.Errorf("pids changed: %+v then %+v", s1, s2)
	}
	if s2.Region != "us-east-1" || !strings.HasSuffix(s2.SourceURL, "/pagila?sslmode=disable") {
		t.Errorf("unexpected stack %+v", s2)
	}
}

func TestNewDatabaseIsPristinePagila(t *testing.T) {
	s := ForTest(t)
	ctx := t.Context()

	// Several at once, as parallel tests do.
	urls := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range urls {
		wg.Go(func() { urls[i], errs[i] = s.NewDatabase(ctx, "") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("NewDatabase %d: %v", i, err)
		}
		name := urls[i][strings.LastIndexByte(urls[i], '/')+1 : strings.IndexByte(urls[i], '?')]
		t.Cleanup(func() { _ = s.DropDatabase(context.Background(), name) })
	}

	conn, err := pgx.Connect(ctx, urls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rentals int
	if err := conn.QueryRow(ctx, "select count(*) from rental").Scan(&rentals); err != nil {
		t.Fatal(err)
	}
	if rentals != 16044 {
		t.Errorf("rental has %d rows, want 16044", rentals)
	}
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		t.Fatal(err)
	}
	if walLevel != "logical" {
		t.Errorf("wal_level = %s, want logical", walLevel)
	}

	// A change in one clone shows in no other.
	if _, err := conn.Exec(ctx, "delete from payment"); err != nil {
		t.Fatal(err)
	}
	conn2, err := pgx.Connect(ctx, urls[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	var payments int
	if err := conn2.QueryRow(ctx, "select count(*) from payment").Scan(&payments); err != nil {
		t.Fatal(err)
	}
	if payments != 16049 {
		t.Errorf("payment in another clone has %d rows, want 16049", payments)
	}
}

func TestNewDatabaseNamed(t *testing.T) {
	s := ForTest(t)
	name := randName("ferry_named_")
	url, err := s.NewDatabase(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.DropDatabase(context.Background(), name) })
	if want := s.DatabaseURL(name); url != want {
		t.Errorf("url = %s, want %s", url, want)
	}
	if _, err := s.NewDatabase(t.Context(), name); err == nil {
		t.Error("creating the same database twice succeeded")
	}
	for _, bad := range []string{"Bad", "x;drop", "a-b", strings.Repeat("a", 64)} {
		if _, err := s.NewDatabase(t.Context(), bad); err == nil {
			t.Errorf("NewDatabase(%q) succeeded, want an error", bad)
		}
	}
}

func TestDropDatabaseWithReplicationSlot(t *testing.T) {
	s := ForTest(t)
	ctx := t.Context()
	url := s.TestDatabase(t) // its cleanup must cope with the dropped database
	name := url[strings.LastIndexByte(url, '/')+1 : strings.IndexByte(url, '?')]
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	slot := randName("ferry_slot_")
	if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot); err != nil {
		t.Fatal(err)
	}
	// conn stays open: DropDatabase has to end it.
	if err := s.DropDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, s.adminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var dbs, slots int
	if err := admin.QueryRow(ctx, "select (select count(*) from pg_database where datname = $1), (select count(*) from pg_replication_slots where slot_name = $2)",
		name, slot).Scan(&dbs, &slots); err != nil {
		t.Fatal(err)
	}
	if dbs != 0 || slots != 0 {
		t.Errorf("after DropDatabase: %d databases, %d slots left", dbs, slots)
	}
	for _, keep := range []string{TemplateDB, DemoDB, "postgres"} {
		if err := s.DropDatabase(ctx, keep); err == nil {
			t.Errorf("DropDatabase(%s) succeeded, want a refusal", keep)
		}
	}
}

// createTable makes a table keyed by pk (S) and waits until it is ACTIVE: as
// in DynamoDB, dynalite answers ResourceNotFoundException while a table is
// CREATING, even with --createTableMs 0 when the machine is busy.
func createTable(t *testing.T, c *dynamodb.Client) string {
	t.Helper()
	ctx := t.Context()
	table := randName("ferry-test-")
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []ddb.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddb.ScalarAttributeTypeS}},
		KeySchema:            []ddb.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddb.KeyTypeHash}},
		BillingMode:          ddb.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return table
}

func TestDynalite(t *testing.T) {
	s := ForTest(t)
	ctx := t.Context()
	c := s.DynamoClient()
	table := createTable(t, c)
	key := map[string]ddb.AttributeValue{"pk": &ddb.AttributeValueMemberS{Value: "CUSTOMER#1"}}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]ddb.AttributeValue{
			"pk":         key["pk"],
			"first_name": &ddb.AttributeValueMemberS{Value: "MARY"},
			"active":     &ddb.AttributeValueMemberN{Value: "1"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := out.Item["first_name"].(*ddb.AttributeValueMemberS); !ok || v.Value != "MARY" {
		t.Errorf("GetItem first_name = %#v, want MARY", out.Item["first_name"])
	}
}

// TestDynaliteEmptyValues pins down what dynalite accepts in non-key
// attributes, which the transform relies on: like DynamoDB since 2020, an
// empty string S and an empty list L.
func TestDynaliteEmptyValues(t *testing.T) {
	s := ForTest(t)
	ctx := t.Context()
	c := s.DynamoClient()
	table := createTable(t, c)
	key := map[string]ddb.AttributeValue{"pk": &ddb.AttributeValueMemberS{Value: "FILM#1"}}
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]ddb.AttributeValue{
			"pk":               key["pk"],
			"description":      &ddb.AttributeValueMemberS{Value: ""},
			"special_features": &ddb.AttributeValueMemberL{Value: []ddb.AttributeValue{}},
			"extra":            &ddb.AttributeValueMemberM{Value: map[string]ddb.AttributeValue{}},
		},
	})
	if err != nil {
		t.Fatalf("PutItem with empty S, L and M: %v", err)
	}
	out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := out.Item["description"].(*ddb.AttributeValueMemberS); !ok || v.Value != "" {
		t.Errorf("description = %#v, want empty S", out.Item["description"])
	}
	if v, ok := out.Item["special_features"].(*ddb.AttributeValueMemberL); !ok || len(v.Value) != 0 {
		t.Errorf("special_features = %#v, want empty L", out.Item["special_features"])
	}
	if v, ok := out.Item["extra"].(*ddb.AttributeValueMemberM); !ok || len(v.Value) != 0 {
		t.Errorf("extra = %#v, want empty M", out.Item["extra"])
	}
	// Keys may not be empty, as in DynamoDB.
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item:      map[string]ddb.AttributeValue{"pk": &ddb.AttributeValueMemberS{Value: ""}},
	}); err == nil {
		t.Error("PutItem with an empty key succeeded, want a ValidationException")
	}
}

func TestKinesalite(t *testing.T) {
	s := ForTest(t)
	ctx := t.Context()
	c := s.KinesisClient()
	stream := randName("ferry-test-")
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
	})
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName:   aws.String(stream),
		PartitionKey: aws.String("rental#1"),
		Data:         []byte(`{"op":"c"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName:        aws.String(stream),
		ShardId:           put.ShardId,
		ShardIteratorType: kt.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 1 || string(got.Records[0].Data) != `{"op":"c"}` ||
		aws.ToString(got.Records[0].SequenceNumber) != aws.ToString(put.SequenceNumber) {
		t.Errorf("GetRecords = %+v, want the one record put", got.Records)
	}
}

// TestDownStopsWhatUpStarted runs a second, private stack (the shared one is
// left alone: other test binaries use it) and takes it down.
func TestDownStopsWhatUpStarted(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is needed for the local stack: run .ci/install-deps")
	}
	// Under /tmp, whose parents the postgres user can traverse.
	dir, err := os.MkdirTemp("", "ferry-stack-down-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp makes it 0700
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = Down(context.Background(), dir)
		_ = os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	s, err := Up(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Reused {
		t.Error("Up in a new directory reused something")
	}
	pids := []int{s.PGPID, s.DynamoPID, s.KinesisPID}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d not alive after Up (%+v)", pid, s)
		}
	}
	if err := pgPing(ctx, s.SourceURL); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteEnvFile(); err != nil {
		t.Fatal(err)
	}

	if err := Down(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still alive after Down", pid)
		}
	}
	// Nothing but the processes is removed.
	for _, f := range []string{"state.json", "env", "logs/postgres.log", "pg/PG_VERSION"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("Down removed %s: %v", f, err)
		}
	}
	if err := Down(ctx, dir); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if _, err := Running(ctx, dir); err == nil {
		t.Error("Running found a stack after Down")
	}
}

func TestEnvFile(t *testing.T) {
	s := &Stack{
		Dir:             t.TempDir(),
		SourceURL:       "postgres://postgres@127.0.0.1:5/pagila?sslmode=disable",
		DynamoEndpoint:  "http://127.0.0.1:6",
		KinesisEndpoint: "http://127.0.0.1:7",
		Region:          "us-east-1",
	}
	if err := s.WriteEnvFile(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"export FERRY_SOURCE='postgres://postgres@127.0.0.1:5/pagila?sslmode=disable'",
		"export AWS_ENDPOINT_URL_DYNAMODB='http://127.0.0.1:6'",
		"export AWS_ENDPOINT_URL_KINESIS='http://127.0.0.1:7'",
		"export AWS_REGION='us-east-1'",
		"export AWS_ACCESS_KEY_ID='ferry'",
		"export AWS_SECRET_ACCESS_KEY='ferry-local-secret'",
	}
	for _, line := range want {
		if !strings.Contains(string(b), line+"\n") {
			t.Errorf("env file lacks %q:\n%s", line, b)
		}
	}
	s.SourceURL = "it's"
	if got := s.EnvScript(); !strings.Contains(got, `export FERRY_SOURCE='it'\''s'`) {
		t.Errorf("quote not escaped:\n%s", got)
	}
}

func TestDirFromEnv(t *testing.T) {
	t.Setenv(EnvStackDir, "relative/stack")
	d, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(d) || !strings.HasSuffix(d, "relative/stack") {
		t.Errorf("Dir() = %s", d)
	}
	t.Setenv(EnvStackDir, "")
	d, err = Dir()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := repoRoot()
	if d != filepath.Join(root, ".local") {
		t.Errorf("Dir() = %s, want %s/.local", d, root)
	}
}

// TestEmulatorsSurviveAbortedRequests: a client killed while it sends a body
// (kill -9 of ferry) must not take the shared emulator down with it, as
// dynalite's and kinesalite's own request handlers would (abort-guard.js).
func TestEmulatorsSurviveAbortedRequests(t *testing.T) {
	s := ForTest(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name      string
		port, pid int
		ping      func(context.Context, string) error
	}{
		{"dynalite", s.DynamoPort, s.DynamoPID, dynamoPing},
		{"kinesalite", s.KinesisPort, s.KinesisPID, kinesisPing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tc.port))
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 100000\r\n\r\n{\"TableName\":")
				// An RST rather than a FIN, as from a killed process with unread data.
				if tcp, ok := conn.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
				conn.Close()
			}
			// The emulator handles connections in order: a ping that answers
			// after the aborted requests were read shows it survived them.
			if err := tc.ping(ctx, endpoint(tc.port)); err != nil {
				t.Fatalf("%s no longer answers after aborted requests: %v", tc.name, err)
			}
			if !alive(tc.pid) {
				t.Fatalf("%s (pid %d) died", tc.name, tc.pid)
			}
		})
	}
}

// TestPostgresAcceptsTLS: the stack's server takes TLS, verified against its
// own certificate, on plain and replication connections; a client that
// trusts another certificate is refused.
func TestPostgresAcceptsTLS(t *testing.T) {
	s := ForTest(t)
	ctx := t.Context()
	tlsURL := func(root string) string {
		return strings.Replace(s.SourceURL, "sslmode=disable", "sslmode=verify-full&sslrootcert="+root, 1)
	}
	for _, extra := range []string{"", "&replication=database"} {
		conn, err := pgx.Connect(ctx, tlsURL(s.CACertFile())+extra)
		if err != nil {
			t.Fatalf("connect with verify-full%s: %v", extra, err)
		}
		if extra == "" {
			var ssl bool
			if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
				t.Errorf("pg_stat_ssl.ssl = %v (%v), want true", ssl, err)
			}
		}
		conn.Close(ctx)
	}
	other := filepath.Join(t.TempDir(), "other.crt")
	if err := writeServerCert(&pgRunner{}, filepath.Dir(other), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, tlsURL(filepath.Join(filepath.Dir(other), caCertName))); err == nil {
		conn.Close(ctx)
		t.Fatal("verify-full accepted a server certificate the client does not trust")
	}
}
