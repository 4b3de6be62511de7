package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, func(k string) string { return env[k] })
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwtd.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./jwtd-data" || c.Leeway != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	av := c.Profiles["appverify"]
	if av.Layout != "appverify" || av.TTL != 90*time.Second || av.Backdate != 10*time.Second {
		t.Errorf("appverify defaults: %+v", av)
	}
	if c.Profiles["castlabs"].Layout != "castlabs" || c.Profiles["default"].TTL != 5*time.Minute {
		t.Errorf("profiles: %+v", c.Profiles)
	}
}

// flag over env over file over defaults.
func TestLayering(t *testing.T) {
	path := writeConfig(t, `
listen: 127.0.0.1:1111
data_dir: /file
log_level: warn
keys:
  - {kid: cl1, alg: HS512, secret: "abc", encoding: raw}
profiles:
  castlabs: {key: cl1}
  mine: {key: cl1, layout: castlabs, ttl: 1m}
`)
	c, err := load(t, []string{"--config", path, "--listen", "127.0.0.1:3333"},
		map[string]string{"JWTD_LISTEN": "127.0.0.1:2222", "JWTD_DATA_DIR": "/env"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3333" || c.DataDir != "/env" || c.LogLevel != "warn" {
		t.Errorf("layering: listen %s data_dir %s log_level %s", c.Listen, c.DataDir, c.LogLevel)
	}
	cl := c.Profiles["castlabs"]
	if cl.Key != "cl1" || cl.Layout != "castlabs" || cl.TTL != 24*time.Hour {
		t.Errorf("a profile's file values merge over its defaults: %+v", cl)
	}
	if c.Profiles["mine"].TTL != time.Minute || len(c.Keys) != 1 || c.Keys[0].Secret != "abc" {
		t.Errorf("file values: %+v %+v", c.Profiles["mine"], c.Keys)
	}
	if c.Dir() != filepath.Dir(path) {
		t.Errorf("Dir %s", c.Dir())
	}
	// JWTD_CONFIG names the file when --config does not.
	c, err = load(t, nil, map[string]string{"JWTD_CONFIG": path})
	if err != nil || c.Listen != "127.0.0.1:1111" {
		t.Errorf("JWTD_CONFIG: %v %v", c, err)
	}
}

// Zero needs no unit, in the file as in the environment.
func TestZeroDurations(t *testing.T) {
	c, err := load(t, nil, map[string]string{"JWTD_CONFIG": writeConfig(t, "leeway: 0\nstore: {linger: 0, retention: 0}\n")})
	if err != nil || c.Leeway != 0 || c.Store.Linger != 0 || c.Store.Retention != 0 {
		t.Errorf("%+v %v", c, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		env  map[string]string
		want string
	}{
		"unknown key":       {file: "listn: 127.0.0.1:1\n", want: "listn"},
		"unknown nested":    {file: "profiles:\n  default: {tll: 1m}\n", want: "tll"},
		"bad listen":        {file: "listen: nowhere\n", want: "listen"},
		"bad duration":      {file: "profiles:\n  default: {ttl: soon}\n", want: "ttl"},
		"duration, no unit": {file: "leeway: 30\n", want: "30 has no unit"},
		"nested, no unit":   {file: "store: {retention: 720}\n", want: "720 has no unit"},
		"env, no unit":      {env: map[string]string{"JWTD_LEEWAY": "30"}, want: "missing unit"},
		"bad level":         {env: map[string]string{"JWTD_LOG_LEVEL": "loud"}, want: "log_level"},
		"leeway too large":  {env: map[string]string{"JWTD_LEEWAY": "5m"}, want: "leeway"},
		"broken YAML":       {file: "listen: [\n", want: "reading"},
		"missing file":      {env: map[string]string{"JWTD_CONFIG": "/nonexistent/jwtd.yaml"}, want: "nonexistent"},
	} {
		t.Run(name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = map[string]string{}
			}
			if tc.file != "" {
				env["JWTD_CONFIG"] = writeConfig(t, tc.file)
			}
			_, err := load(t, nil, env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("listen: 127.0.0.1:1\n")
	f.Add("keys:\n  - {kid: a, alg: HS256, secret: x}\nprofiles:\n  default: {key: a, ttl: 1m}\n")
	f.Add("profiles: [1, 2]\n")
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		AddFlags(fs)
		c, err := Load(fs, func(k string) string {
			if k == "JWTD_CONFIG" {
				return p
			}
			return ""
		})
		if err == nil && c.Validate() != nil {
			t.Fatal("Load returned a configuration that does not validate")
		}
	})
}

// A relative data_dir in the file is relative to the file; one that would
// move an existing installation's data (earlier versions read it from the
// working directory) is refused with the fix, not started afresh.
func TestDataDirRelativeToTheFile(t *testing.T) {
	path := writeConfig(t, "data_dir: state\n")
	t.Chdir(t.TempDir())
	c, err := load(t, []string{"--config", path}, nil)
	if err != nil || c.DataDir != filepath.Join(filepath.Dir(path), "state") {
		t.Fatalf("data_dir %q, %v", c.DataDir, err)
	}
	if err := os.MkdirAll(filepath.Join("state", "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = load(t, []string{"--config", path}, nil)
	if err == nil || !strings.Contains(err.Error(), "earlier versions") || !strings.Contains(err.Error(), "write data_dir:") {
		t.Errorf("an installation's data in the working directory: %v", err)
	}
	// Once the file's directory has its own, or the path is given
	// otherwise, nothing is refused.
	if c, err := load(t, []string{"--config", path, "--data-dir", "state"}, nil); err != nil || c.DataDir != "state" {
		t.Errorf("--data-dir: %q %v", c.DataDir, err)
	}
	if err := os.MkdirAll(filepath.Join(filepath.Dir(path), "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, []string{"--config", path}, nil); err != nil {
		t.Errorf("with the file's own data directory: %v", err)
	}
}
