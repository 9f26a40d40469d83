package hazards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/safebpf/safebpf/probe"
)

const schemaPath = "../docs/policy.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	sch, err := jsonschema.NewCompiler().Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return sch
}

// yamlToInstance converts a YAML document to a JSON schema instance.
func yamlToInstance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSchemaAcceptsExamples(t *testing.T) {
	sch := compileSchema(t)
	files, err := filepath.Glob("../examples/policy/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policies: %v", err)
	}
	files = append(files, "catalog.yaml") // the built-in catalog uses the same schema
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(yamlToInstance(t, data)); err != nil {
			t.Errorf("%s does not validate against the schema: %v", f, err)
		}
		if f != "catalog.yaml" {
			if _, err := ParsePolicy(f, data); err != nil {
				t.Errorf("ParsePolicy(%s): %v", f, err)
			}
		}
	}
}

func TestSchemaRejectsBadExamples(t *testing.T) {
	sch := compileSchema(t)
	files, err := filepath.Glob("testdata/bad-policy-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad policies: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(yamlToInstance(t, data)); err == nil {
			t.Errorf("schema accepts %s", f)
		}
		if _, err := ParsePolicy(f, data); err == nil {
			t.Errorf("ParsePolicy accepts %s", f)
		}
	}
}

// TestSchemaMatchesTypes keeps the schema's property names in step with the
// Go types' yaml tags, so the two cannot drift apart.
func TestSchemaMatchesTypes(t *testing.T) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties map[string]any `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		sort.Strings(s)
		return s
	}
	for _, tc := range []struct {
		def string
		typ reflect.Type
	}{
		{"", reflect.TypeFor[Policy]()},
		{"hazard", reflect.TypeFor[Hazard]()},
		{"override", reflect.TypeFor[Override]()},
		{"kernelAssertion", reflect.TypeFor[KernelAssertion]()},
		{"uprobePacing", reflect.TypeFor[UprobePacing]()},
		{"reference", reflect.TypeFor[Reference]()},
		{"distroRange", reflect.TypeFor[DistroRange]()},
		{"configCondition", reflect.TypeFor[ConfigCondition]()},
		{"evidence", reflect.TypeFor[Evidence]()},
		{"requires", reflect.TypeFor[Requires]()},
		{"params", reflect.TypeFor[Params]()},
	} {
		props := doc.Properties
		if tc.def != "" {
			props = doc.Defs[tc.def].Properties
		}
		_, names := yamlFields(tc.typ)
		if tc.def == "" {
			// The root also describes catalog documents, whose version
			// a policy file must not set.
			_, catNames := yamlFields(reflect.TypeFor[catalogDocument]())
			for _, n := range catNames {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			sort.Strings(names)
		}
		if diff := cmp.Diff(names, keys(props)); diff != "" {
			t.Errorf("schema %q vs %s fields (-go +schema):\n%s", tc.def, tc.typ, diff)
		}
	}
	// Enumerations match the Go constants.
	var enums struct {
		Defs map[string]struct {
			Enum []string `json:"enum"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &enums); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range validActions {
		actions = append(actions, string(a))
	}
	if diff := cmp.Diff(actions, enums.Defs["action"].Enum); diff != "" {
		t.Errorf("action enum (-go +schema):\n%s", diff)
	}
	if diff := cmp.Diff(joinStrings(validSeverities), strings.Join(enums.Defs["severity"].Enum, ", ")); diff != "" {
		t.Errorf("severity enum (-go +schema):\n%s", diff)
	}
	if diff := cmp.Diff(joinStrings(validOnUnknown), strings.Join(enums.Defs["onUnknown"].Enum, ", ")); diff != "" {
		t.Errorf("on_unknown enum (-go +schema):\n%s", diff)
	}
	if diff := cmp.Diff(probe.Arches(), enums.Defs["arch"].Enum); diff != "" {
		t.Errorf("arch enum (-go +schema):\n%s", diff)
	}
	var mechs []string
	for _, m := range probeMechanisms() {
		mechs = append(mechs, string(m))
	}
	if !slices.Equal(mechs, enums.Defs["mechanism"].Enum) {
		t.Errorf("mechanism enum = %v, want %v", enums.Defs["mechanism"].Enum, mechs)
	}
}

// TestSchemaBounds holds the bounds docs/policy.schema.json states to the
// constants that own them, so the published schema cannot drift from
// what the validator enforces (issue 11: one owner per piece of
// knowledge; the schema restates it, and this test checks the restating).
func TestSchemaBounds(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"maxactive":         MaxActiveLimit,
		"maxactive_ceiling": MaxActiveLimit,
		"concurrency":       MaxPaceConcurrency,
		"min_cpus":          MaxMinCPUs,
	}
	found := map[string]int{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for name, p := range props {
					limit, ok := want[name]
					if !ok {
						continue
					}
					found[name]++
					max, _ := p.(map[string]any)["maximum"].(float64)
					if max != limit {
						t.Errorf("schema: %s maximum %v, want %v (the Go constant)", name, max, limit)
					}
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	for name := range want {
		if found[name] == 0 {
			t.Errorf("schema states no bound for %s", name)
		}
	}
}
