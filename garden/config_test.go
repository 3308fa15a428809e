package garden

// config_test.go checks defaults, validation and the farm key sources.

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{App: "shop"}.withDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.SegmentPath != "/dev/shm/gardenstate-shop" || c.IdleTimeout != 20*time.Minute || c.Lifetime != 24*time.Hour ||
		c.CookieName != "garden_session" || c.CookiePath != "/" || c.SameSite != http.SameSiteLaxMode || c.Insecure ||
		c.FreshnessTimeout != 100*time.Millisecond || c.JanitorInterval != time.Second || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"App", func(c *Config) { c.App = "" }},
		{"App", func(c *Config) { c.App = strings.Repeat("a", 65) }},
		{"App", func(c *Config) { c.App = "a/b" }},
		{"SegmentSize", func(c *Config) { c.SegmentSize = -1 }},
		{"IdleTimeout", func(c *Config) { c.IdleTimeout = time.Microsecond }},
		{"Lifetime", func(c *Config) { c.Lifetime = time.Minute; c.IdleTimeout = time.Hour }},
		{"CookieName", func(c *Config) { c.CookieName = "a b" }},
		{"CookieName", func(c *Config) { c.CookieName = "a;b" }},
		{"CookieDomain", func(c *Config) { c.CookieDomain = "a;b" }},
		{"CookiePath", func(c *Config) { c.CookiePath = "app" }},
		{"SameSite", func(c *Config) { c.SameSite = 9 }},
		{"SameSite", func(c *Config) { c.SameSite = http.SameSiteNoneMode; c.Insecure = true }},
		{"Key", func(c *Config) { c.Key = []byte("short") }},
		{"Key", func(c *Config) { c.Key = testKey; c.KeyFile = "/k" }},
		{"FreshnessTimeout", func(c *Config) { c.FreshnessTimeout = -1 }},
		{"JanitorInterval", func(c *Config) { c.JanitorInterval = time.Microsecond }},
	} {
		c := Config{App: "x"}
		tc.mod(&c)
		_, err := Open(c)
		if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Open error %v, want ErrBadConfig naming the field", tc.field, err)
		}
	}
}

func TestFarmKeySources(t *testing.T) {
	dir := t.TempDir()
	const b64key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // testKey
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(b64key+"\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600)
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not base64!\n"), 0o600)
	t.Setenv("GARDEN_TEST_KEY", b64key)
	t.Setenv("GARDEN_TEST_BAD_KEY", "c2hvcnQ=")

	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"file", func(c *Config) { c.KeyFile = good }, true},
		{"env", func(c *Config) { c.KeyEnv = "GARDEN_TEST_KEY" }, true},
		{"key", func(c *Config) { c.Key = testKey }, true},
		{"short file", func(c *Config) { c.KeyFile = short }, false},
		{"junk file", func(c *Config) { c.KeyFile = junk }, false},
		{"missing file", func(c *Config) { c.KeyFile = filepath.Join(dir, "none") }, false},
		{"unset env", func(c *Config) { c.KeyEnv = "GARDEN_TEST_UNSET_KEY" }, false},
		{"bad env", func(c *Config) { c.KeyEnv = "GARDEN_TEST_BAD_KEY" }, false},
	} {
		cfg := testConfig(t)
		tc.mod(&cfg)
		st, err := Open(cfg)
		if !tc.ok {
			if !errors.Is(err, ErrBadKey) {
				t.Errorf("%s: error %v, want ErrBadKey", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(st.farm) != string(testKey) || st.hostKey {
			t.Errorf("%s: key %q", tc.name, st.farm)
		}
		st.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentPath = filepath.Join(t.TempDir(), "no", "such", "dir", "seg")
	if _, err := Open(cfg); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	// A segment of another application is refused.
	cfg = testConfig(t)
	st := openStore(t, cfg)
	cfg.App = "other"
	if _, err := Open(cfg); err == nil {
		t.Error("Open of another application's segment succeeded")
	}
	st.Close()
}
