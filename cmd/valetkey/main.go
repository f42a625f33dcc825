// Command valetkey is the Valetkey credential broker: the server and its
// operator commands.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/valetkey/valetkey/internal/app"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/config"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/vault"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// cli carries what every command shares.
type cli struct {
	stdout, stderr io.Writer
	cfg            config.Config
	asJSON         bool
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "valetkey",
		Short:         "Self-hosted credential broker for embedded integrations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stderr)
	root.SetErr(stderr)
	fl := root.PersistentFlags()
	fl.String("addr", "", "listen address (VALETKEY_ADDR, default 127.0.0.1:8080)")
	fl.String("data-dir", "", "directory of the embedded defaults (VALETKEY_DATA_DIR, default ./data)")
	fl.String("database-url", "", "sqlite:PATH or postgres://... (VALETKEY_DATABASE_URL)")
	fl.String("keyset-file", "", "tink keyset file (VALETKEY_KEYSET_FILE)")
	fl.String("public-url", "", "URL browsers and providers reach (VALETKEY_PUBLIC_URL)")
	fl.String("catalog-dir", "", "extra source definitions (VALETKEY_CATALOG_DIR)")
	fl.String("log-level", "", "debug, info, warn or error (VALETKEY_LOG_LEVEL)")
	fl.String("log-format", "", "json or text (VALETKEY_LOG_FORMAT)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := config.FromEnv()
		if err != nil {
			return err
		}
		override(cmd.Flags(), map[string]*string{
			"addr": &cfg.Addr, "data-dir": &cfg.DataDir, "database-url": &cfg.DatabaseURL, "keyset-file": &cfg.KeysetFile,
			"public-url": &cfg.PublicURL, "catalog-dir": &cfg.CatalogDir, "log-level": &cfg.LogLevel, "log-format": &cfg.LogFormat,
		})
		c.cfg = cfg
		return cfg.Resolve()
	}
	root.AddCommand(c.serveCmd(), c.migrateCmd(), c.orgCmd(), c.apikeyCmd(), c.keysCmd(), c.appCmd(), c.sourcesCmd())
	return root
}

// override applies the flags that were set (flags win over env).
func override(fs *pflag.FlagSet, into map[string]*string) {
	for name, dst := range into {
		if f := fs.Lookup(name); f != nil && f.Changed {
			*dst = f.Value.String()
		}
	}
}

func (c *cli) jsonFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.asJSON, "json", false, "print exactly one JSON value on stdout")
}

// print writes v as JSON with --json, else human text, on stdout.
func (c *cli) print(v any, human func(w io.Writer)) error {
	if c.asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(c.stdout)
	return nil
}

// withApp adapts a command body that needs the components: it opens them
// (logs on stderr) and closes them after.
func (c *cli) withApp(run func(cmd *cobra.Command, args []string, a *app.App) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a, err := c.open(cmd.Context())
		if err != nil {
			return err
		}
		defer a.Close()
		return run(cmd, args, a)
	}
}

// open starts the components with logs on stderr.
func (c *cli) open(ctx context.Context) (*app.App, error) {
	log, err := app.NewLogger(c.cfg, c.stderr)
	if err != nil {
		return nil, err
	}
	return app.Open(ctx, c.cfg, log)
}

func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP server",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			if err := a.Bootstrap(cmd.Context(), c.stderr); err != nil {
				return err
			}
			return a.Serve(cmd.Context(), nil)
		}),
	}
}

func (c *cli) migrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			return c.print(map[string]any{"status": "migrated", "database": a.Store.Flavor()}, func(w io.Writer) {
				fmt.Fprintln(w, "database is up to date")
			})
		}),
	}
	c.jsonFlag(cmd)
	return cmd
}

func (c *cli) orgCmd() *cobra.Command {
	org := &cobra.Command{Use: "org", Short: "Manage organizations"}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organization",
		Args:  cobra.ExactArgs(1),
		RunE: c.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			o, err := a.Tenants.CreateOrganization(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.print(map[string]any{"id": o.ID, "name": o.Name, "created_at": o.CreatedAt}, func(w io.Writer) {
				fmt.Fprintf(w, "organization %s created (id %s)\n", o.Name, o.ID)
			})
		}),
	}
	c.jsonFlag(create)
	list := &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			orgs, err := a.Tenants.ListOrganizations(cmd.Context())
			if err != nil {
				return err
			}
			out := []map[string]any{}
			for _, o := range orgs {
				out = append(out, map[string]any{"id": o.ID, "name": o.Name, "created_at": o.CreatedAt})
			}
			return c.print(out, func(w io.Writer) {
				for _, o := range orgs {
					fmt.Fprintf(w, "%s\t%s\n", o.ID, o.Name)
				}
			})
		}),
	}
	c.jsonFlag(list)
	org.AddCommand(create, list)
	return org
}

func (c *cli) apikeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage organization API keys"}
	var orgName, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key (printed once)",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			o, err := a.Tenants.Organization(cmd.Context(), orgName)
			if err != nil {
				return err
			}
			k, key, err := a.Tenants.CreateAPIKey(cmd.Context(), o.ID, name, vault.Secret{})
			if err != nil {
				return err
			}
			return c.print(map[string]any{"id": k.ID, "organization_id": o.ID, "name": k.Name, "key": key.Reveal()}, func(w io.Writer) {
				fmt.Fprintf(w, "api key %s created for %s; it is shown only now:\n%s\n", k.ID, o.Name, key.Reveal())
			})
		}),
	}
	create.Flags().StringVar(&name, "name", "cli", "a label for the key")
	c.jsonFlag(create)
	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their values)",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			o, err := a.Tenants.Organization(cmd.Context(), orgName)
			if err != nil {
				return err
			}
			keys, err := a.Tenants.ListAPIKeys(cmd.Context(), o.ID)
			if err != nil {
				return err
			}
			out := []map[string]any{}
			for _, k := range keys {
				out = append(out, map[string]any{"id": k.ID, "organization_id": k.OrganizationID, "name": k.Name, "prefix": k.Prefix,
					"created_at": k.CreatedAt, "last_used_at": k.LastUsedAt, "revoked_at": k.RevokedAt})
			}
			return c.print(out, func(w io.Writer) {
				for _, k := range keys {
					state := "active"
					if k.RevokedAt != nil {
						state = "revoked"
					}
					fmt.Fprintf(w, "%s\t%s…\t%s\t%s\n", k.ID, k.Prefix, k.Name, state)
				}
			})
		}),
	}
	c.jsonFlag(list)
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: c.withApp(func(cmd *cobra.Command, args []string, a *app.App) error {
			o, err := a.Tenants.Organization(cmd.Context(), orgName)
			if err != nil {
				return err
			}
			if err := a.Tenants.RevokeAPIKey(cmd.Context(), o.ID, args[0]); err != nil {
				return err
			}
			return c.print(map[string]any{"id": args[0], "revoked": true}, func(w io.Writer) { fmt.Fprintf(w, "api key %s revoked\n", args[0]) })
		}),
	}
	c.jsonFlag(revoke)
	for _, sub := range []*cobra.Command{create, list, revoke} {
		sub.Flags().StringVar(&orgName, "org", "default", "organization name or id")
		cmd.AddCommand(sub)
	}
	return cmd
}

func (c *cli) appCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "app", Short: "Manage embedded-API applications (client id/secret for operator tokens)"}
	var orgName, name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an application (the secret is printed once)",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			o, err := a.Tenants.Organization(cmd.Context(), orgName)
			if err != nil {
				return err
			}
			ap, secret, err := a.Embedded.CreateApplication(cmd.Context(), o.ID, name)
			if err != nil {
				return err
			}
			return c.print(map[string]any{"id": ap.ID, "organization_id": o.ID, "name": ap.Name, "client_id": ap.ClientID, "client_secret": secret.Reveal()},
				func(w io.Writer) {
					fmt.Fprintf(w, "application %s for %s\nclient_id: %s\nclient_secret (shown only now): %s\n", ap.ID, o.Name, ap.ClientID, secret.Reveal())
				})
		}),
	}
	create.Flags().StringVar(&orgName, "org", "default", "organization name or id")
	create.Flags().StringVar(&name, "name", "default", "a label for the application")
	c.jsonFlag(create)
	cmd.AddCommand(create)
	return cmd
}

func (c *cli) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the encryption keyset"}
	var batch int
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new primary key and re-encrypt every credential with it (safe while servers run)",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			start := time.Now()
			id, err := a.Vault.Rotate()
			if err != nil {
				return err
			}
			a.Log.Info("new primary key added; re-encrypting credentials", "key_id", id)
			if err := a.AuditOperator(cmd.Context(), "keyset.rotate", "keyset", strconv.FormatUint(uint64(id), 10)); err != nil {
				return err
			}
			res, err := credential.Reencrypt(cmd.Context(), a.Store, a.Vault, batch)
			if err != nil {
				return err
			}
			return c.print(map[string]any{"primary_key_id": id, "scanned": res.Scanned, "reencrypted": res.Reencrypted,
				"raced": res.Raced, "duration_ms": time.Since(start).Milliseconds()}, func(w io.Writer) {
				fmt.Fprintf(w, "primary key is now %d; re-encrypted %d of %d credentials\n", id, res.Reencrypted, res.Scanned)
			})
		}),
	}
	rotate.Flags().IntVar(&batch, "batch", 500, "credentials per batch")
	c.jsonFlag(rotate)
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys and how many credentials each seals",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			counts, err := a.Store.CountSealedByKey(cmd.Context())
			if err != nil {
				return err
			}
			primary := a.Vault.PrimaryKeyID()
			out := []map[string]any{}
			for _, id := range a.Vault.KeyIDs() {
				out = append(out, map[string]any{"key_id": id, "primary": id == primary, "credentials": counts[id]})
			}
			return c.print(out, func(w io.Writer) {
				for _, k := range out {
					fmt.Fprintf(w, "%d\tprimary=%v\tcredentials=%d\n", k["key_id"], k["primary"], k["credentials"])
				}
			})
		}),
	}
	c.jsonFlag(list)
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Delete non-primary keys that no stored credential uses (run after every server has the new keyset)",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			counts, err := a.Store.CountSealedByKey(cmd.Context())
			if err != nil {
				return err
			}
			removed, err := a.Vault.Prune(func(id uint32) bool { return counts[id] > 0 })
			if err != nil {
				return err
			}
			for _, id := range removed {
				if err := a.AuditOperator(cmd.Context(), "keyset.prune", "keyset", strconv.FormatUint(uint64(id), 10)); err != nil {
					return err
				}
			}
			return c.print(map[string]any{"removed": removed}, func(w io.Writer) { fmt.Fprintf(w, "removed keys: %v\n", removed) })
		}),
	}
	c.jsonFlag(prune)
	signing := &cobra.Command{
		Use:   "rotate-signing",
		Short: "Add a new JWT signing key; older keys keep verifying the tokens they signed",
		RunE: c.withApp(func(cmd *cobra.Command, _ []string, a *app.App) error {
			kid, err := a.Issuer.Rotate(cmd.Context())
			if err != nil {
				return err
			}
			if err := a.AuditOperator(cmd.Context(), "signing_key.rotate", "signing_key", kid); err != nil {
				return err
			}
			return c.print(map[string]any{"kid": kid}, func(w io.Writer) { fmt.Fprintf(w, "new signing key %s\n", kid) })
		}),
	}
	c.jsonFlag(signing)
	cmd.AddCommand(rotate, list, prune, signing)
	return cmd
}

// sourcesCmd lists the catalog (built in plus VALETKEY_CATALOG_DIR) with
// each source's auth methods; it needs no database.
func (c *cli) sourcesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sources",
		Short: "List the source catalog with auth methods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := catalog.Load(c.cfg.CatalogDir)
			if err != nil {
				return err
			}
			type method struct {
				Type      string   `json:"type"`
				OAuthType string   `json:"oauth_type,omitempty"`
				PKCE      bool     `json:"pkce,omitempty"`
				Fields    []string `json:"fields,omitempty"`
			}
			type source struct {
				ShortName string   `json:"short_name"`
				Name      string   `json:"name"`
				Labels    []string `json:"labels"`
				Auth      []method `json:"auth"`
			}
			out := []source{}
			for _, s := range cat.List() {
				src := source{ShortName: s.ShortName, Name: s.Name, Labels: s.Labels}
				for _, m := range s.Auth {
					mm := method{Type: m.Type, OAuthType: m.OAuthType, PKCE: m.PKCE}
					for _, f := range m.Fields {
						mm.Fields = append(mm.Fields, f.Name)
					}
					src.Auth = append(src.Auth, mm)
				}
				out = append(out, src)
			}
			return c.print(out, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SHORT NAME\tNAME\tAUTH")
				for _, s := range out {
					var auth []string
					for _, m := range s.Auth {
						a := m.Type
						if m.OAuthType != "" {
							a += " (" + m.OAuthType + ")"
						}
						auth = append(auth, a)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.ShortName, s.Name, strings.Join(auth, ", "))
				}
				_ = tw.Flush()
				fmt.Fprintf(w, "%d sources\n", len(out))
			})
		},
	}
	c.jsonFlag(cmd)
	return cmd
}
