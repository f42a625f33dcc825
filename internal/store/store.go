// Package store defines Valetkey's persistent model and the repository
// interface every backend implements; sqlstore implements it for SQLite and
// Postgres, and storetest holds the conformance suite both must pass.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors every backend returns (wrapped) for these conditions.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict")
)

// Organization is a tenant.
type Organization struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// APIKey is an organization's API key; only a hash of the key is stored.
type APIKey struct {
	ID             string
	OrganizationID string
	Name           string
	Prefix         string // the first characters, shown to help recognise a key
	Hash           []byte
	CreatedAt      time.Time
	LastUsedAt     *time.Time
	RevokedAt      *time.Time
}

// Collection groups the records of one or more connections.
type Collection struct {
	ID             string
	OrganizationID string
	Name           string
	ReadableID     string
	CreatedAt      time.Time
	ModifiedAt     time.Time
}

// Connection statuses.
const (
	StatusActive      = "active"
	StatusPendingAuth = "pending_auth"
	StatusSyncing     = "syncing"
	StatusError       = "error"
	StatusNeedsReauth = "needs_reauth"
	StatusInactive    = "inactive"
	StatusPendingSync = "pending_sync"
)

// SourceConnection is one end user's connection to one source.
type SourceConnection struct {
	ID              string
	OrganizationID  string
	CollectionID    string
	CollectionRID   string // the collection's readable id, filled on reads
	Name            string
	Description     string
	ShortName       string
	Status          string
	AuthMethod      string
	Config          json.RawMessage
	Schedule        json.RawMessage // nil when none
	AuthenticatedAt *time.Time
	CreatedAt       time.Time
	ModifiedAt      time.Time
}

// Credential is an encrypted secret owned by one connection (or, later, by
// another object). Ciphertext is sealed with associated data naming
// OrganizationID and ID. Version increases on every change of the secret and
// fences concurrent refreshes.
type Credential struct {
	ID                 string
	OrganizationID     string
	SourceConnectionID string
	Kind               string // oauth2 | api_key | basic | custom
	Ciphertext         []byte
	KeyID              uint32
	Version            int64
	ExpiresAt          *time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// AuditEvent records an access to a credential. It never holds a value.
type AuditEvent struct {
	ID             string
	OrganizationID string
	Actor          string
	Action         string
	TargetType     string
	TargetID       string
	RemoteAddr     string
	CreatedAt      time.Time
}

// ConnectionFilter narrows ListConnections.
type ConnectionFilter struct {
	CollectionID string
	Skip, Limit  int
}

// Store is the repository every backend implements. Every method that reads
// or writes an organization's data takes its id and never crosses it: another
// organization's object is ErrNotFound.
type Store interface {
	Close() error
	Ping(ctx context.Context) error

	CreateOrganization(ctx context.Context, o Organization) error
	GetOrganization(ctx context.Context, idOrName string) (Organization, error)
	ListOrganizations(ctx context.Context) ([]Organization, error)
	CountOrganizations(ctx context.Context) (int, error)

	CreateAPIKey(ctx context.Context, k APIKey) error
	// APIKeyByHash returns the unrevoked key with this hash.
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	ListAPIKeys(ctx context.Context, orgID string) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, orgID, id string, at time.Time) error
	TouchAPIKey(ctx context.Context, id string, at time.Time) error

	CreateCollection(ctx context.Context, c Collection) error
	GetCollection(ctx context.Context, orgID, readableID string) (Collection, error)
	GetCollectionByID(ctx context.Context, orgID, id string) (Collection, error)
	ListCollections(ctx context.Context, orgID string, skip, limit int) ([]Collection, error)
	// DeleteCollection removes the collection, its connections and their credentials.
	DeleteCollection(ctx context.Context, orgID, id string) error

	// CreateConnection stores a connection and, when cred is not nil, its
	// credential, in one transaction.
	CreateConnection(ctx context.Context, c SourceConnection, cred *Credential) error
	GetConnection(ctx context.Context, orgID, id string) (SourceConnection, error)
	ListConnections(ctx context.Context, orgID string, f ConnectionFilter) ([]SourceConnection, error)
	// UpdateConnection runs update on the stored connection and saves what it
	// returns, in one transaction. When update returns a credential it replaces
	// the connection's credential in the same transaction.
	UpdateConnection(ctx context.Context, orgID, id string, update func(c *SourceConnection) (*Credential, error)) (SourceConnection, error)
	// DeleteConnection removes the connection and erases its credential.
	DeleteConnection(ctx context.Context, orgID, id string) error

	GetCredentialForConnection(ctx context.Context, orgID, connectionID string) (Credential, error)
	// ListCredentials pages through every credential ordered by id, starting
	// after afterID, for key rotation.
	ListCredentials(ctx context.Context, afterID string, limit int) ([]Credential, error)
	// ReplaceCiphertext swaps a credential's ciphertext only while it still
	// holds old (compare-and-swap), leaving its version alone. It reports
	// whether the swap happened.
	ReplaceCiphertext(ctx context.Context, id string, old, new []byte, keyID uint32) (bool, error)
	// CountCredentialsByKey counts stored credentials per key id.
	CountCredentialsByKey(ctx context.Context) (map[uint32]int, error)

	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, orgID string, limit int) ([]AuditEvent, error)
}
