// Package authprovider reads credentials held by external auth providers
// (Pipedream Connect, Composio) on demand, for connections whose accounts
// were connected there. It manages each organization's provider accounts,
// checks them at registration, and caches what it reads only in memory.
package authprovider

import (
	"context"
	"time"

	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/vault"
)

// Provider kinds.
const (
	Pipedream = "pipedream"
	Composio  = "composio"
)

// Field describes one auth or config field of a provider kind.
type Field struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	Description string   `json:"description,omitempty"`
	Required    bool     `json:"required"`
	Secret      bool     `json:"secret,omitempty"`
	Pattern     string   `json:"pattern,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Default     string   `json:"default,omitempty"`
}

// Kind is a provider kind as the catalog route shows it.
type Kind struct {
	ShortName    string  `json:"short_name"`
	Name         string  `json:"name"`
	Description  string  `json:"description"`
	AuthFields   []Field `json:"auth_fields"`
	ConfigFields []Field `json:"config_fields"`
}

// Kinds lists the supported provider kinds.
var Kinds = []Kind{
	{
		ShortName: Pipedream, Name: "Pipedream Connect",
		Description: "Use accounts your users connected in Pipedream Connect. Pipedream exposes credentials only for accounts connected with your own (custom) OAuth clients.",
		AuthFields: []Field{
			{Name: "client_id", Title: "Pipedream OAuth client ID", Type: "string", Required: true},
			{Name: "client_secret", Title: "Pipedream OAuth client secret", Type: "string", Required: true, Secret: true},
		},
		ConfigFields: []Field{
			{Name: "project_id", Title: "Project ID", Type: "string", Required: true, Pattern: `^proj_[A-Za-z0-9]+$`, Description: "e.g. proj_JPsD74a"},
			{Name: "account_id", Title: "Account ID", Type: "string", Required: true, Pattern: `^apn_[A-Za-z0-9]+$`, Description: "e.g. apn_gyha5Ky"},
			{Name: "environment", Title: "Environment", Type: "string", Enum: []string{"production", "development"}, Default: "production"},
			{Name: "external_user_id", Title: "External user ID", Type: "string", Description: "Your id for the end user, for mapping"},
		},
	},
	{
		ShortName: Composio, Name: "Composio",
		Description: "Use accounts your users connected in Composio. Credentials are available for auth configs that use your own OAuth app, not Composio-managed ones.",
		AuthFields: []Field{
			{Name: "api_key", Title: "Composio API key", Type: "string", Required: true, Secret: true},
		},
		ConfigFields: []Field{
			{Name: "auth_config_id", Title: "Auth config ID", Type: "string", Required: true, Pattern: `^ac_[A-Za-z0-9_-]+$`},
			{Name: "account_id", Title: "Connected account ID", Type: "string", Required: true, Pattern: `^ca_[A-Za-z0-9_-]+$`},
		},
	},
}

// KindOf returns a provider kind.
func KindOf(shortName string) (Kind, bool) {
	for _, k := range Kinds {
		if k.ShortName == shortName {
			return k, true
		}
	}
	return Kind{}, false
}

// Account is what a provider holds for one connected account, mapped to
// Valetkey's field names.
type Account struct {
	Fields    map[string]vault.Secret
	ExpiresAt *time.Time
	// Broken, when not empty, says the provider reports the account as
	// unusable (dead, unhealthy, expired) and why.
	Broken string
}

// client is one provider account's API client.
type client interface {
	// check verifies the provider credentials with the provider.
	check(ctx context.Context) error
	// fetch reads one connected account's credentials for a source.
	fetch(ctx context.Context, src *catalog.Source, config map[string]string) (Account, error)
}
