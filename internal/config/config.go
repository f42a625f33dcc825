// Package config reads Valetkey's settings from VALETKEY_* environment
// variables; the CLI binds flags over them (flags win over env, env over
// defaults).
package config

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/riverqueue/river"

	"github.com/valetkey/valetkey/internal/authprovider"
	"github.com/valetkey/valetkey/internal/refresh"
)

// Config is every server setting.
type Config struct {
	Addr             string `env:"VALETKEY_ADDR" envDefault:"127.0.0.1:8080"`
	DataDir          string `env:"VALETKEY_DATA_DIR" envDefault:"./data"`
	DatabaseURL      string `env:"VALETKEY_DATABASE_URL"`
	KeysetFile       string `env:"VALETKEY_KEYSET_FILE"`
	PublicURL        string `env:"VALETKEY_PUBLIC_URL"`
	BootstrapAPIKey  string `env:"VALETKEY_BOOTSTRAP_API_KEY"`
	CatalogDir       string `env:"VALETKEY_CATALOG_DIR"`
	PipedreamBaseURL string `env:"VALETKEY_PIPEDREAM_BASE_URL" envDefault:"https://api.pipedream.com"`
	ComposioBaseURL  string `env:"VALETKEY_COMPOSIO_BASE_URL" envDefault:"https://backend.composio.dev"`
	LogLevel         string `env:"VALETKEY_LOG_LEVEL" envDefault:"info"`
	LogFormat        string `env:"VALETKEY_LOG_FORMAT" envDefault:"json"`

	// Proactive refresh: every SweepInterval (0 disables), refresh tokens
	// expiring within SweepWindow, at most SweepConcurrency at a time.
	SweepInterval    time.Duration `env:"VALETKEY_REFRESH_SWEEP_INTERVAL" envDefault:"1m"`
	SweepWindow      time.Duration `env:"VALETKEY_REFRESH_SWEEP_WINDOW" envDefault:"10m"`
	SweepConcurrency int           `env:"VALETKEY_REFRESH_SWEEP_CONCURRENCY" envDefault:"16"`

	// AllowPrivateTargets lets webhook deliveries reach loopback and private
	// addresses (off by default: a subscriber could aim Valetkey inside).
	AllowPrivateTargets bool `env:"VALETKEY_ALLOW_PRIVATE_TARGETS"`
	// RateLimit is the steady requests per second each API key (or bearer
	// token's subject) may send to one replica, RateBurst how many it may
	// send at once; the excess gets 429 with Retry-After. 0 disables.
	RateLimit float64 `env:"VALETKEY_RATE_LIMIT" envDefault:"1000"`
	RateBurst int     `env:"VALETKEY_RATE_BURST" envDefault:"2000"`
	// Traces selects the OpenTelemetry exporter: "" (off), "stdout", or
	// "otlp" (OTLP/HTTP, configured by the standard OTEL_EXPORTER_OTLP_* variables).
	Traces string `env:"VALETKEY_TRACES"`
	// TraceWriter receives stdout-exporter spans (os.Stdout when nil).
	TraceWriter io.Writer `env:"-"`
	// APIKeyCacheTTL is how long a replica remembers an API key it has
	// verified (0: look every request's key up). A key revoked through another
	// replica keeps working on this one for at most this long.
	APIKeyCacheTTL time.Duration `env:"VALETKEY_API_KEY_CACHE_TTL" envDefault:"5s"`
	// AuditRetention is how long audit records are kept (0 keeps them forever).
	AuditRetention time.Duration `env:"VALETKEY_AUDIT_RETENTION" envDefault:"2160h"`
	// JobRescueAfter: a job left running by a replica that died is handed
	// to another worker after this long (default 2m).
	JobRescueAfter time.Duration `env:"VALETKEY_JOB_RESCUE_AFTER"`
	// ScheduleTick is how often cron schedules are checked (default 20s).
	ScheduleTick time.Duration `env:"VALETKEY_SCHEDULE_TICK"`
	// JobPollInterval is how often workers look for new jobs (default 1s).
	JobPollInterval time.Duration `env:"VALETKEY_JOB_POLL_INTERVAL"`

	// The refresh engine: how long one replica may hold a token's refresh
	// lease, and the timeout of one token request. Zero takes the defaults
	// (60s, 10s).
	RefreshLeaseTTL       time.Duration `env:"VALETKEY_REFRESH_LEASE_TTL"`
	RefreshRequestTimeout time.Duration `env:"VALETKEY_REFRESH_REQUEST_TIMEOUT"`

	// Refresh holds engine options only code can set (an HTTP client, retry
	// tuning); the two durations above are copied into it.
	Refresh refresh.Options `env:"-"`
	// Providers holds auth-provider client options only code can set (token
	// margin, retry tuning); the base URLs above are copied into it.
	Providers authprovider.Options `env:"-"`
	// RetryPolicy overrides the job queue's backoff (tests).
	RetryPolicy river.ClientRetryPolicy `env:"-"`
	// Clock, when set, replaces time.Now for the refresh engine and OAuth
	// flows (tests).
	Clock func() time.Time `env:"-"`
}

// FromEnv reads the environment.
func FromEnv() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Defaults returns the configuration an empty environment gives.
func Defaults() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		panic(fmt.Sprintf("config: the defaults do not parse: %v", err)) // a programming error, caught by the tests
	}
	return c
}

// Resolve fills the settings whose defaults derive from others and checks
// values. addr is the address actually listened on (for the public URL
// default); pass "" before listening.
func (c *Config) Resolve() error {
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "valetkey.db")
	}
	if c.KeysetFile == "" {
		c.KeysetFile = filepath.Join(c.DataDir, "keyset.json")
	}
	if _, err := c.SlogLevel(); err != nil {
		return err
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("config: VALETKEY_LOG_FORMAT must be json or text, got %q", c.LogFormat)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	return nil
}

// PublicURLFor returns the public URL, defaulting to http://<listen addr>.
func (c *Config) PublicURLFor(listenAddr string) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	return "http://" + listenAddr
}

// SlogLevel parses LogLevel.
func (c *Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return l, fmt.Errorf("config: VALETKEY_LOG_LEVEL: %w", err)
	}
	return l, nil
}
