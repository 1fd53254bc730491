package main

import (
	"fmt"

	"path/filepath"
	"strconv"
)

// The function's environment. deploy/template.yaml sets these; a test there
// checks the template against this list.
const (
	// EnvPlan is the path of the compiled plan (ferry plan --compile), shipped
	// in the deployment package next to the bootstrap. Default: plan.json in
	// LAMBDA_TASK_ROOT.
	EnvPlan = "FERRY_PLAN"
	// EnvControlTable is ferry's control table (fences, per-shard positions,
	// dead letters, verify's barriers). Default: ferry_control.
	EnvControlTable = "FERRY_CONTROL_TABLE"
	// EnvWorkers is how many item writes one invocation runs at once.
	EnvWorkers = "FERRY_WORKERS"
	// EnvSourceDB names the source database in dead-letter entries.
	EnvSourceDB = "FERRY_SOURCE_DB"
)

// Environment lists every variable the function reads (besides the AWS SDK's
// own, such as AWS_REGION and AWS_ENDPOINT_URL_DYNAMODB).
var Environment = []string{EnvPlan, EnvControlTable, EnvWorkers, EnvSourceDB}

// Actions is every AWS API action the function calls itself, by the resource
// it calls it on: "target" (every mapped DynamoDB table) and "control" (the
// control table). The event source mapping's own reads of the stream and its
// writes to the on-failure destination are the function role's too; they are
// listed in deploy/template.yaml and docs/permissions.md.
var Actions = map[string][]string{
	"target":  {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"},
	"control": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
}

// config is the function's settings, read once at cold start.
type settings struct {
	plan    string
	control string
	workers int
	db      string
}

func configFromEnv(getenv func(string) string) (settings, error) {
	c := settings{plan: getenv(EnvPlan), control: getenv(EnvControlTable), workers: 16, db: getenv(EnvSourceDB)}
	if c.plan == "" {
		root := getenv("LAMBDA_TASK_ROOT")
		if root == "" {
			root = "."
		}
		c.plan = filepath.Join(root, "plan.json")
	}
	if c.control == "" {
		c.control = "ferry_control"
	}
	if w := getenv(EnvWorkers); w != "" {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > 256 {
			return c, fmt.Errorf("%s=%q: want a number of concurrent writes from 1 to 256", EnvWorkers, w)
		}
		c.workers = n
	}
	return c, nil
}
