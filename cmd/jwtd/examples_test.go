package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"

	"github.com/jwtd/jwtd/internal/testservice"
)

// The single-instance example starts as written (its address and data
// directory moved aside, so that the test disturbs nothing), and issues.
func TestSingleInstanceExampleStarts(t *testing.T) {
	base, logs := startServe(t, nil, "--config", "../../examples/jwtd.yaml", "--data-dir", t.TempDir())
	key := printedAdminKey(t, logs.String())
	if code, out := httpDo(t, "POST", base+"/v1/tokens", key, "application/json", `{"profile":"default","sub":"alice"}`); code != 201 {
		t.Errorf("mint: %d %s", code, out)
	}
	// default_region is US in the example: national numbers are read.
	if code, out := httpDo(t, "GET", base+"/v1/token/4155552671/tx-1", "", "", ""); code != 200 {
		t.Errorf("seed 000 with a national number: %d %s", code, out)
	}
}

// compose.yaml's jwtd services run examples/scale-out.yaml. Run here the way
// compose runs it (two instances started at once on one data directory,
// one MongoDB and one Redis, the services' hosts replaced by the test's),
// both start, share their keys and admin key, and a token minted by one is
// active at the other.
func TestComposeScaleOut(t *testing.T) {
	compose, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Parser().Unmarshal(compose)
	if err != nil {
		t.Fatal(err)
	}
	services, _ := doc["services"].(map[string]any)
	var configFile string
	for _, name := range []string{"jwtd-a", "jwtd-b"} {
		svc, _ := services[name].(map[string]any)
		env, _ := svc["environment"].(map[string]any)
		inContainer, _ := env["JWTD_CONFIG"].(string)
		if master, _ := env["JWTD_MASTER_KEY"].(string); !strings.HasPrefix(master, "${JWTD_MASTER_KEY:?") {
			t.Errorf("%s: JWTD_MASTER_KEY is %q, not required from the environment (.env)", name, master)
		}
		volumes, _ := svc["volumes"].([]any)
		host := ""
		for _, v := range volumes {
			parts := strings.Split(fmt.Sprint(v), ":")
			if len(parts) >= 2 && parts[1] == inContainer {
				host = parts[0]
			}
		}
		if inContainer == "" || host == "" {
			t.Fatalf("%s: JWTD_CONFIG %q is not a file compose mounts (%v)", name, inContainer, volumes)
		}
		configFile = filepath.Join("../..", host)
	}

	store := storeURLs(t)["mongodb"](t)
	env := []string{"JWTD_STORE_URL=" + store, "JWTD_RATELIMIT_URL=" + testservice.RedisURL(t), "JWTD_MASTER_KEY=" + newMasterKey()}
	dataDir := t.TempDir()
	var wg sync.WaitGroup
	bases := make([]string, 2)
	logs := make([]*logSink, 2)
	for i := range 2 {
		wg.Go(func() {
			_, bases[i], logs[i], _ = startProcessEnv(t, env, "--config", configFile, "--data-dir", dataDir)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if a, b := get(t, bases[0]+"/.well-known/jwks.json"), get(t, bases[1]+"/.well-known/jwks.json"); a != b {
		t.Errorf("the instances publish different keys:\n%s\n%s", a, b)
	}
	key := printedAdminKey(t, logs[0].String()+logs[1].String())
	code, out := httpDo(t, "POST", bases[0]+"/v1/tokens", key, "application/json", `{"profile":"default","sub":"alice"}`)
	var minted struct{ Token string }
	if code != 201 || json.Unmarshal([]byte(out), &minted) != nil {
		t.Fatalf("mint on a: %d %s", code, out)
	}
	code, out = httpDo(t, "POST", bases[1]+"/v1/introspect", key, "application/x-www-form-urlencoded", "token="+minted.Token)
	if code != 200 || !strings.Contains(out, `"active":true`) {
		t.Errorf("introspect on b: %d %s", code, out)
	}
}

var adminKeyLine = regexp.MustCompile(`(?m)^\s+(jwtd_[A-Za-z0-9_-]+)$`)

// printedAdminKey is the admin key jwtd printed on its first start.
func printedAdminKey(t *testing.T, stderr string) string {
	t.Helper()
	m := adminKeyLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no admin key printed:\n%s", stderr)
	}
	return m[1]
}
