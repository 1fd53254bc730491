package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// templatePath is the SAM template that deploys this function.
const templatePath = "../../deploy/template.yaml"

// streamReadActions are the actions a Kinesis event source mapping calls with
// the function's role: the list of the Lambda Developer Guide ("Process Amazon
// Kinesis Data Streams records with Lambda", "Create a Kinesis event source
// mapping", https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-create.html)
// less kinesis:SubscribeToShard, which only an enhanced fan-out consumer calls.
var streamReadActions = []string{
	"kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
	"kinesis:GetShardIterator", "kinesis:ListShards",
}

// logActions are AWSLambdaBasicExecutionRole's, less logs:CreateLogGroup: the
// template creates the function's log group itself.
var logActions = []string{"logs:CreateLogStream", "logs:PutLogEvents"}

// shortForms maps CloudFormation's short-form tags to the keys of their long
// form.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt",
	"!If": "Fn::If", "!Not": "Fn::Not", "!Equals": "Fn::Equals", "!And": "Fn::And",
	"!Or": "Fn::Or", "!Join": "Fn::Join", "!Split": "Fn::Split", "!Select": "Fn::Select",
	"!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr",
	"!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue", "!Transform": "Fn::Transform",
}

// decodeCFN decodes a YAML node of a CloudFormation template into maps,
// slices and scalars, with every short-form tag (!Ref X) turned into its long
// form ({"Ref": "X"}), so that the checks below see one form only.
func decodeCFN(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		return decodeCFN(n.Content[0])
	case yaml.AliasNode:
		return decodeCFN(n.Alias)
	}
	long, tagged := shortForms[n.Tag]
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") && !tagged {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: key %s twice", n.Content[i].Line, k)
			}
			val, err := decodeCFN(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			val, err := decodeCFN(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		if tagged {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	if !tagged {
		return v, nil
	}
	if s, ok := v.(string); ok && n.Tag == "!GetAtt" {
		res, attr, _ := strings.Cut(s, ".")
		v = []any{res, attr}
	}
	return map[string]any{long: v}, nil
}

func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", templatePath, err)
	}
	v, err := decodeCFN(&doc)
	if err != nil {
		t.Fatalf("%s: %v", templatePath, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not a mapping", templatePath)
	}
	return m
}

// at follows keys through nested maps; nil when one is missing.
func at(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// refOf returns X of {"Ref": X}.
func refOf(v any) (string, bool) {
	m := asMap(v)
	if len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

// getAttOf returns R and A of {"Fn::GetAtt": [R, A]}.
func getAttOf(v any) (string, string, bool) {
	m := asMap(v)
	l, ok := m["Fn::GetAtt"].([]any)
	if len(m) != 1 || !ok || len(l) != 2 {
		return "", "", false
	}
	r, _ := l[0].(string)
	a, _ := l[1].(string)
	return r, a, r != "" && a != ""
}

// strings of a policy's Action (a string or a list).
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, stringList(e)...)
		}
		return out
	}
	return nil
}

// resourceKeys names each entry of a statement's Resource: a literal ARN as
// itself, {"Ref": X} as "Ref:X", {"Fn::GetAtt": [R, A]} as "GetAtt:R.A",
// {"Fn::Sub": S} as "Sub:S" (anything else as its JSON).
func resourceKeys(v any) []string {
	if l, ok := v.([]any); ok {
		var out []string
		for _, e := range l {
			out = append(out, resourceKeys(e)...)
		}
		return out
	}
	if s, ok := v.(string); ok {
		return []string{s}
	}
	if r, ok := refOf(v); ok {
		return []string{"Ref:" + r}
	}
	if r, a, ok := getAttOf(v); ok {
		return []string{"GetAtt:" + r + "." + a}
	}
	if s, ok := asMap(v)["Fn::Sub"].(string); ok {
		return []string{"Sub:" + s}
	}
	b, _ := json.Marshal(v)
	return []string{string(b)}
}

// resourcesOfType lists the template's resources of a type, sorted.
func resourcesOfType(tmpl map[string]any, typ string) []string {
	var out []string
	for name, r := range asMap(tmpl["Resources"]) {
		if at(r, "Type") == typ {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// theFunction returns the applier function's resource.
func theFunction(t *testing.T, tmpl map[string]any) map[string]any {
	t.Helper()
	fn := asMap(at(tmpl, "Resources", "FerryApplier"))
	if at(fn, "Type") != "AWS::Serverless::Function" {
		t.Fatalf("Resources.FerryApplier: want an AWS::Serverless::Function, got %v", at(fn, "Type"))
	}
	return fn
}

// theEvent returns the function's one event source, which must be Kinesis.
func theEvent(t *testing.T, fn map[string]any) map[string]any {
	t.Helper()
	events := asMap(at(fn, "Properties", "Events"))
	if len(events) != 1 {
		t.Fatalf("FerryApplier: want one event source, got %d", len(events))
	}
	for name, e := range events {
		if at(e, "Type") != "Kinesis" {
			t.Fatalf("FerryApplier event %s: Type %v, want Kinesis", name, at(e, "Type"))
		}
		return asMap(at(e, "Properties"))
	}
	return nil
}

// parameter returns the declared parameter that v refers to ({"Ref": P}).
func parameter(t *testing.T, tmpl map[string]any, what string, v any) (string, map[string]any) {
	t.Helper()
	name, ok := refOf(v)
	p := asMap(at(tmpl, "Parameters", name))
	if !ok || p == nil {
		t.Fatalf("%s: want !Ref of a parameter, got %v", what, v)
	}
	return name, p
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

func TestTemplateFunction(t *testing.T) {
	tmpl := loadTemplate(t)
	if tmpl["Transform"] != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform %v, want AWS::Serverless-2016-10-31", tmpl["Transform"])
	}
	props := asMap(at(theFunction(t, tmpl), "Properties"))
	for _, c := range []struct {
		prop string
		want any
	}{
		{"Handler", "bootstrap"},
		{"Runtime", "provided.al2023"},
		{"Architectures", []any{"arm64"}},
	} {
		if got := props[c.prop]; fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("FerryApplier %s: %v, want %v", c.prop, got, c.want)
		}
	}
	// The package is the directory the build writes bootstrap and plan.json to.
	code, _ := props["CodeUri"].(string)
	if got := filepath.Join(filepath.Dir(templatePath), code); got != filepath.FromSlash("../../build/ferry-lambda") {
		t.Errorf("FerryApplier CodeUri %q is %s from here, want ../../build/ferry-lambda (build/ferry-lambda in the repository)", code, got)
	}
}

func TestTemplateEnvironment(t *testing.T) {
	tmpl := loadTemplate(t)
	vars := asMap(at(theFunction(t, tmpl), "Properties", "Environment", "Variables"))
	got := slices.Sorted(maps.Keys(vars))
	want := slices.Sorted(slices.Values(Environment))
	if !slices.Equal(got, want) {
		t.Fatalf("environment variables %v, want exactly config.go's Environment %v", got, want)
	}
	for _, name := range got {
		parameter(t, tmpl, "environment variable "+name, vars[name])
	}

	// The parameters' defaults are the function's own defaults.
	def := func(env string) string {
		_, p := parameter(t, tmpl, env, vars[env])
		return fmt.Sprint(p["Default"])
	}
	cfg, err := configFromEnv(func(k string) string {
		if k == "LAMBDA_TASK_ROOT" {
			return "/var/task" // the package's root on Lambda
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ env, code string }{
		{EnvPlan, cfg.plan},
		{EnvControlTable, cfg.control},
		{EnvWorkers, strconv.Itoa(cfg.workers)},
	} {
		if got := def(c.env); got != c.code {
			t.Errorf("%s: the parameter's default is %q, the function's %q", c.env, got, c.code)
		}
	}
	// Every value the parameter allows for FERRY_WORKERS, and only those, is
	// one the function accepts.
	_, workers := parameter(t, tmpl, EnvWorkers, vars[EnvWorkers])
	lo, _ := number(workers["MinValue"])
	hi, _ := number(workers["MaxValue"])
	for _, c := range []struct {
		n  float64
		ok bool
	}{{lo - 1, false}, {lo, true}, {hi, true}, {hi + 1, false}} {
		_, err := configFromEnv(func(k string) string {
			if k == EnvWorkers {
				return strconv.Itoa(int(c.n))
			}
			return ""
		})
		if (err == nil) != c.ok {
			t.Errorf("%s=%v: the template allows it: %v, the function accepts it: %v", EnvWorkers, c.n, c.ok, err == nil)
		}
	}
}

func TestTemplateEventSourceMapping(t *testing.T) {
	tmpl := loadTemplate(t)
	ev := theEvent(t, theFunction(t, tmpl))
	has := func(list any, s string) bool { return slices.Contains(stringList(list), s) }
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"Stream is a parameter", func() bool { _, ok := refOf(ev["Stream"]); return ok }()},
		{"StartingPosition TRIM_HORIZON", ev["StartingPosition"] == "TRIM_HORIZON"},
		{"FunctionResponseTypes has ReportBatchItemFailures", has(ev["FunctionResponseTypes"], "ReportBatchItemFailures")},
		{"BisectBatchOnFunctionError true", ev["BisectBatchOnFunctionError"] == true},
		{"MaximumRecordAgeInSeconds -1", fmt.Sprint(ev["MaximumRecordAgeInSeconds"]) == "-1"},
		{"MaximumBatchingWindowInSeconds set", ev["MaximumBatchingWindowInSeconds"] != nil},
	} {
		if !c.ok {
			t.Errorf("the Kinesis event: want %s; got %v", c.name, ev)
		}
	}
	// Parameters with the documented range and default.
	for _, c := range []struct {
		prop         string
		min, max     any
		defaultValue string
	}{
		{"BatchSize", 1, 10000, "100"},
		{"ParallelizationFactor", 1, 10, "4"},
		{"MaximumRetryAttempts", -1, 10000, ""},
	} {
		_, p := parameter(t, tmpl, "event "+c.prop, ev[c.prop])
		if fmt.Sprint(p["MinValue"]) != fmt.Sprint(c.min) || fmt.Sprint(p["MaxValue"]) != fmt.Sprint(c.max) {
			t.Errorf("event %s: parameter range %v–%v, want %v–%v", c.prop, p["MinValue"], p["MaxValue"], c.min, c.max)
		}
		if c.defaultValue != "" && fmt.Sprint(p["Default"]) != c.defaultValue {
			t.Errorf("event %s: parameter default %v, want %s", c.prop, p["Default"], c.defaultValue)
		}
	}
	q, attr, ok := getAttOf(at(ev, "DestinationConfig", "OnFailure", "Destination"))
	if !ok || attr != "Arn" || at(tmpl, "Resources", q, "Type") != "AWS::SQS::Queue" {
		t.Errorf("event DestinationConfig.OnFailure.Destination: want !GetAtt <an SQS queue of the template>.Arn, got %v", at(ev, "DestinationConfig"))
	}
}

// grants returns what the function's role allows: resource key (see
// resourceKeys) → actions. It fails the test on any statement that is not a
// plain Allow of named actions on named resources.
func grants(t *testing.T, tmpl map[string]any) map[string][]string {
	t.Helper()
	fn := theFunction(t, tmpl)
	if at(fn, "Properties", "Policies") != nil {
		t.Errorf("FerryApplier has Policies: SAM adds them to a role it creates; grant in the template's role")
	}
	role, attr, ok := getAttOf(at(fn, "Properties", "Role"))
	if !ok || attr != "Arn" || at(tmpl, "Resources", role, "Type") != "AWS::IAM::Role" {
		t.Fatalf("FerryApplier Role: want !GetAtt <an AWS::IAM::Role of the template>.Arn, got %v", at(fn, "Properties", "Role"))
	}
	rp := asMap(at(tmpl, "Resources", role, "Properties"))
	if rp["ManagedPolicyArns"] != nil || rp["PermissionsBoundary"] != nil {
		t.Errorf("%s: managed policies %v: grant inline only", role, rp["ManagedPolicyArns"])
	}
	if p := at(rp, "AssumeRolePolicyDocument", "Statement"); !strings.Contains(fmt.Sprint(p), "lambda.amazonaws.com") {
		t.Errorf("%s: the trust policy does not let Lambda assume it: %v", role, p)
	}
	out := map[string][]string{}
	policies, _ := rp["Policies"].([]any)
	for _, pol := range policies {
		stmts, _ := at(pol, "PolicyDocument", "Statement").([]any)
		for _, st := range stmts {
			s := asMap(st)
			for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
				if s[k] != nil {
					t.Errorf("statement %v: %s", s["Sid"], k)
				}
			}
			if s["Effect"] != "Allow" {
				t.Errorf("statement %v: Effect %v", s["Sid"], s["Effect"])
			}
			actions := stringList(s["Action"])
			resources := resourceKeys(s["Resource"])
			if len(actions) == 0 || len(resources) == 0 {
				t.Errorf("statement %v: no Action or no Resource", s["Sid"])
			}
			for _, a := range actions {
				if strings.Contains(a, "*") {
					t.Errorf("statement %v: action %q has a wildcard", s["Sid"], a)
				}
			}
			for _, r := range resources {
				if strings.Contains(r, "*") {
					t.Errorf("statement %v: resource %q has a wildcard", s["Sid"], r)
				}
				out[r] = append(out[r], actions...)
			}
		}
	}
	return out
}

func TestTemplatePermissions(t *testing.T) {
	tmpl := loadTemplate(t)
	fn := theFunction(t, tmpl)
	ev := theEvent(t, fn)
	granted := grants(t, tmpl)

	// The resources, as the template names them.
	target := "Ref:TargetTableArns"
	if p := asMap(at(tmpl, "Parameters", "TargetTableArns")); p["Type"] != "CommaDelimitedList" ||
		!regexp.MustCompile(`^\^arn:.*:dynamodb:.*:table/.*\$$`).MatchString(fmt.Sprint(p["AllowedPattern"])) {
		t.Errorf("parameter TargetTableArns: want a CommaDelimitedList whose AllowedPattern is a whole table ARN, got %v", p)
	}
	controlParam, _ := parameter(t, tmpl, EnvControlTable, at(fn, "Properties", "Environment", "Variables", EnvControlTable))
	control := "Sub:arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${" + controlParam + "}"
	streamParam, _ := refOf(ev["Stream"])
	queue, _, _ := getAttOf(at(ev, "DestinationConfig", "OnFailure", "Destination"))
	logGroups := resourcesOfType(tmpl, "AWS::Logs::LogGroup")
	if len(logGroups) != 1 {
		t.Fatalf("want one log group (the function's), got %v", logGroups)
	}
	// Lambda writes to /aws/lambda/<function name>.
	name, _ := at(fn, "Properties", "FunctionName", "Fn::Sub").(string)
	if got, _ := at(tmpl, "Resources", logGroups[0], "Properties", "LogGroupName", "Fn::Sub").(string); name == "" || got != "/aws/lambda/"+name {
		t.Errorf("log group %s is named %q; the function (FunctionName %q) logs to /aws/lambda/%s", logGroups[0], got, name, name)
	}

	type grant struct {
		what     string
		resource string
		actions  []string
	}
	want := []grant{
		{`Actions["target"] on the mapped tables`, target, Actions["target"]},
		{`Actions["control"] on the control table`, control, Actions["control"]},
		{"the event source mapping's reads of the stream", "Ref:" + streamParam, streamReadActions},
		{"the on-failure destination", "GetAtt:" + queue + ".Arn", []string{"sqs:SendMessage"}},
		{"the function's logs", "GetAtt:" + logGroups[0] + ".Arn", logActions},
	}
	for _, w := range want {
		t.Run(w.what, func(t *testing.T) {
			got := slices.Compact(slices.Sorted(slices.Values(granted[w.resource])))
			exp := slices.Sorted(slices.Values(w.actions))
			if !slices.Equal(got, exp) {
				t.Errorf("granted on %s: %v, want exactly %v", w.resource, got, exp)
			}
		})
	}
	for r, actions := range granted {
		if !slices.ContainsFunc(want, func(w grant) bool { return w.resource == r }) {
			t.Errorf("granted on %s, which the function has no use for: %v", r, actions)
		}
	}
}

func TestTemplateAlarmAndOutputs(t *testing.T) {
	tmpl := loadTemplate(t)
	var iteratorAge bool
	for _, name := range resourcesOfType(tmpl, "AWS::CloudWatch::Alarm") {
		p := asMap(at(tmpl, "Resources", name, "Properties"))
		if p["MetricName"] != "IteratorAge" {
			continue
		}
		iteratorAge = true
		dims, _ := p["Dimensions"].([]any)
		fnDim := len(dims) == 1 && at(dims[0], "Name") == "FunctionName"
		if r, _ := refOf(at(dims[0], "Value")); !fnDim || r != "FerryApplier" {
			t.Errorf("alarm %s: want the one dimension FunctionName = !Ref FerryApplier, got %v", name, dims)
		}
		if p["Namespace"] != "AWS/Lambda" || p["Statistic"] != "Maximum" {
			t.Errorf("alarm %s: want AWS/Lambda IteratorAge, Maximum; got %v %v", name, p["Namespace"], p["Statistic"])
		}
		if _, th := parameter(t, tmpl, "alarm "+name+" Threshold", p["Threshold"]); fmt.Sprint(th["Default"]) != "60000" {
			t.Errorf("alarm %s: threshold default %v ms, want 60000", name, th["Default"])
		}
	}
	if !iteratorAge {
		t.Error("no AWS::CloudWatch::Alarm on IteratorAge")
	}

	ev := theEvent(t, theFunction(t, tmpl))
	queue, _, _ := getAttOf(at(ev, "DestinationConfig", "OnFailure", "Destination"))
	var fnArn, queueURL bool
	for _, o := range asMap(tmpl["Outputs"]) {
		v := at(o, "Value")
		if r, a, ok := getAttOf(v); ok && r == "FerryApplier" && a == "Arn" {
			fnArn = true
		}
		if r, ok := refOf(v); ok && r == queue {
			queueURL = true // !Ref of a queue is its URL
		}
	}
	if !fnArn || !queueURL {
		t.Errorf("Outputs: the function's ARN: %v, the on-failure queue's URL: %v; want both", fnArn, queueURL)
	}
}

// TestTemplateReferences checks that every Ref, GetAtt and ${} of a Sub names
// something the template declares (or a pseudo parameter), and that every
// parameter is used.
func TestTemplateReferences(t *testing.T) {
	tmpl := loadTemplate(t)
	params := asMap(tmpl["Parameters"])
	resources := asMap(tmpl["Resources"])
	used := map[string]bool{}
	check := func(name, where string) {
		used[name] = true
		if _, ok := params[name]; ok || resources[name] != nil || strings.HasPrefix(name, "AWS::") {
			return
		}
		t.Errorf("%s refers to %q, which the template does not declare", where, name)
	}
	subVar := regexp.MustCompile(`\$\{([^!}][^}]*)\}`)
	var walk func(v any, where string)
	walk = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := refOf(v); ok {
				check(r, where)
			}
			if r, _, ok := getAttOf(v); ok {
				check(r, where)
			}
			if sub, ok := v["Fn::Sub"]; ok {
				// !Sub S, or !Sub [S, {local variables}]
				s, _ := sub.(string)
				var local map[string]any
				if l, ok := sub.([]any); ok && len(l) == 2 {
					s, _ = l[0].(string)
					local = asMap(l[1])
				}
				for _, m := range subVar.FindAllStringSubmatch(s, -1) {
					if res, _, _ := strings.Cut(m[1], "."); local[m[1]] == nil {
						check(res, where)
					}
				}
			}
			for k, e := range v {
				walk(e, where+"."+k)
			}
		case []any:
			for i, e := range v {
				walk(e, fmt.Sprintf("%s[%d]", where, i))
			}
		}
	}
	walk(tmpl["Resources"], "Resources")
	walk(tmpl["Conditions"], "Conditions")
	walk(tmpl["Outputs"], "Outputs")
	for name := range params {
		if !used[name] {
			t.Errorf("parameter %s is not used", name)
		}
	}
}
