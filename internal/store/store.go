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
	// ErrUnavailable marks a failure to reach the database (down,
	// restarting, connection lost): nothing was decided, retry later.
	ErrUnavailable = errors.New("database unavailable")
)

// Organization is a tenant.
type Organization struct {
	ID        string
	Name      string
	CreatedAt time.Time
	Branding  Branding
}

// Branding is what an organization shows its end users in the Connect
// widget (white label). Empty fields mean the defaults.
type Branding struct {
	DisplayName string
	AccentColor string
	LogoURL     string
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
	// AuthProviderID names the auth provider that holds this connection's
	// credential (read on demand); empty for credentials stored here.
	AuthProviderID     string
	AuthProviderRID    string // the provider's readable id, filled on reads
	AuthProviderConfig json.RawMessage
	// WorkspaceID is the end user's workspace (embedded API); empty for
	// connections made through the native API.
	WorkspaceID string
}

// Application is an organization's client id/secret pair for the embedded
// API's operator tokens; only a hash of the secret is stored.
type Application struct {
	ID             string
	OrganizationID string
	Name           string
	ClientID       string
	SecretHash     []byte
	CreatedAt      time.Time
	RevokedAt      *time.Time
}

// Workspace is one end user's space in an organization.
type Workspace struct {
	ID             string
	OrganizationID string
	ExternalUserID string
	CreatedAt      time.Time
}

// SigningKey is an Ed25519 key that signs JWTs; the private key is sealed.
type SigningKey struct {
	ID         string // the JWT kid
	Ciphertext []byte
	KeyID      uint32
	PublicKey  []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// SourceTemplate is an organization's preset for a connector: defaults
// merged under what end users give.
type SourceTemplate struct {
	ID                   string
	OrganizationID       string
	Name                 string
	ShortName            string
	PartialDefaultConfig json.RawMessage
	CreatedAt, UpdatedAt time.Time
}

// Sync job statuses.
const (
	JobCreated    = "created"
	JobPending    = "pending"
	JobRunning    = "running"
	JobCompleted  = "completed"
	JobFailed     = "failed"
	JobCancelling = "cancelling"
	JobCancelled  = "cancelled"
)

// SyncJob is one run of a connection's sync. Ciphertext holds a one-off
// token override, sealed, and is erased when the job ends.
type SyncJob struct {
	ID                                       string
	OrganizationID                           string
	SourceConnectionID                       string
	Status                                   string
	ForceFullSync                            bool
	Ciphertext                               []byte
	KeyID                                    uint32
	Inserted, Updated, Deleted, Kept, Failed int
	Error, ErrorCategory                     string
	CreatedAt                                time.Time
	StartedAt                                *time.Time
	CompletedAt                              *time.Time
}

// Active reports whether the job has not ended.
func (j SyncJob) Active() bool {
	switch j.Status {
	case JobCreated, JobPending, JobRunning, JobCancelling:
		return true
	}
	return false
}

// Webhook is an organization's subscription; its signing secret is sealed.
type Webhook struct {
	ID             string
	OrganizationID string
	URL            string
	Events         []string
	Ciphertext     []byte
	KeyID          uint32
	CreatedAt      time.Time
}

// WebhookDelivery is one event sent (or being sent) to one subscription.
type WebhookDelivery struct {
	ID             string
	OrganizationID string
	WebhookID      string
	Event          string
	Payload        string
	Status         string // pending | delivered | failed
	Attempts       int
	LastStatus     int
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Record is one upstream object synced into a collection.
type Record struct {
	ID                 string
	OrganizationID     string
	CollectionID       string
	SourceConnectionID string
	Source             string
	EntityType         string
	UpstreamID         string
	Title              string
	Body               string
	ContentHash        string
	UpdatedAt          time.Time
}

// SearchHit is a record found by full-text search.
type SearchHit struct {
	Record
	Snippet string
	Score   float64
}

// JobStats summarises a connection's jobs.
type JobStats struct {
	Total, Successful, Failed int
	Last                      *SyncJob
}

// OAuthSecret is a server-side OAuth result (tokens, sealed) waiting to be
// turned into a connection: single use, bound to workspace and source.
type OAuthSecret struct {
	ID             string
	OrganizationID string
	WorkspaceID    string
	ShortName      string
	Ciphertext     []byte
	KeyID          uint32
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UsedAt         *time.Time
}

// AuthProvider is an organization's account at a credential provider
// (Pipedream Connect, Composio); its credentials are sealed in Ciphertext.
type AuthProvider struct {
	ID             string
	OrganizationID string
	Name           string
	ReadableID     string
	ShortName      string // pipedream | composio
	MaskedClientID string
	Ciphertext     []byte
	KeyID          uint32
	CreatedAt      time.Time
	ModifiedAt     time.Time
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
	// Refreshable says the payload holds a refresh token, so the refresh
	// engine and the sweeper can act on it without decrypting.
	Refreshable bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// OAuthApp is an organization's own OAuth client for one source (white
// label). The client secret is sealed in Ciphertext.
type OAuthApp struct {
	ID                   string
	OrganizationID       string
	ShortName            string
	ClientID             string
	Ciphertext           []byte
	KeyID                uint32
	Scopes               []string
	RedirectURLAllowlist []string
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// OAuthSession is one pending browser authorization. The one-time code of
// the auth URL and the state are stored only as hashes; the PKCE verifier
// (and a one-connection client secret) are sealed in Ciphertext.
type OAuthSession struct {
	ID                 string
	OrganizationID     string
	SourceConnectionID string
	ShortName          string
	CodeHash           []byte
	StateHash          []byte
	Ciphertext         []byte
	KeyID              uint32
	RedirectURL        string
	CreatedAt          time.Time
	ExpiresAt          time.Time
	CodeUsedAt         *time.Time
	StateUsedAt        *time.Time
	// WorkspaceID marks a server-side flow (embedded API): the callback
	// stores an OAuthSecret instead of completing a connection.
	WorkspaceID string
}

// SealedRow is any row holding a vault ciphertext, for key rotation.
type SealedRow struct {
	Table          string
	ID             string
	OrganizationID string
	Ciphertext     []byte
}

// Tables whose rows hold vault ciphertexts.
const (
	TableCredentials   = "credentials"
	TableOAuthApps     = "oauth_apps"
	TableOAuthSessions = "oauth_sessions"
	TableAuthProviders = "auth_providers"
	TableSigningKeys   = "signing_keys"
	TableOAuthSecrets  = "oauth_secrets"
	TableSyncJobs      = "sync_jobs"
	TableWebhooks      = "webhooks"
)

// SealedTables lists every table with ciphertexts.
var SealedTables = []string{TableCredentials, TableOAuthApps, TableOAuthSessions, TableAuthProviders, TableSigningKeys, TableOAuthSecrets, TableSyncJobs, TableWebhooks}

// RefreshCandidate is a credential the sweeper should refresh soon.
type RefreshCandidate struct {
	CredentialID       string
	OrganizationID     string
	SourceConnectionID string
	ExpiresAt          time.Time
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

// AuditFilter narrows ListAudit; zero fields match everything.
type AuditFilter struct {
	Action   string
	TargetID string
	Actor    string
	Since    time.Time
	Limit    int
}

// ConnectionFilter narrows ListConnections.
type ConnectionFilter struct {
	CollectionID string
	WorkspaceID  string
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
	SetBranding(ctx context.Context, orgID string, b Branding) error

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
	GetCredential(ctx context.Context, id string) (Credential, error)

	// TryLease takes the refresh lease of a credential for owner until the
	// given time, if the credential is still at version and no live lease is
	// held by someone else. It reports whether the lease was taken and, if
	// so, returns the row as leased (one statement: the lease and the read).
	TryLease(ctx context.Context, id string, version int64, owner string, now, until time.Time) (Credential, bool, error)
	// ReleaseLease gives the lease back if owner holds it.
	ReleaseLease(ctx context.Context, id, owner string) error
	// SaveRefreshed stores a refreshed credential (new ciphertext, expiry,
	// refreshable) as version+1 and releases the lease, only if the row is
	// still at version and leased by owner: the fencing that makes a slow or
	// resumed refresher unable to overwrite newer state. It reports whether
	// the write happened; on false nothing changed. The audit event ev is
	// recorded when the write happens: on Postgres in the same statement (one
	// commit), on SQLite through the audit group commit right after, so there
	// true comes with an error if the event alone could not be written.
	SaveRefreshed(ctx context.Context, c Credential, version int64, owner string, ev AuditEvent) (bool, error)
	// MarkNeedsReauth sets the connection's status to needs_reauth and
	// releases owner's lease on its credential, keeping the credential.
	MarkNeedsReauth(ctx context.Context, orgID, connectionID, credentialID, owner string, at time.Time) error
	// ListRefreshCandidates returns refreshable credentials expiring before
	// the given time, not leased, of connections that are not needs_reauth.
	ListRefreshCandidates(ctx context.Context, before, now time.Time, limit int) ([]RefreshCandidate, error)

	// ListSealed pages through a table's ciphertexts by id, after afterID.
	ListSealed(ctx context.Context, table, afterID string, limit int) ([]SealedRow, error)
	// ReplaceSealed swaps a row's ciphertext only while it still holds old
	// (compare-and-swap), leaving versions alone. It reports whether the swap happened.
	ReplaceSealed(ctx context.Context, table, id string, old, new []byte, keyID uint32) (bool, error)
	// CountSealedByKey counts ciphertexts per key id across every sealed table.
	CountSealedByKey(ctx context.Context) (map[uint32]int, error)

	PutOAuthApp(ctx context.Context, a OAuthApp) (OAuthApp, error)
	GetOAuthApp(ctx context.Context, orgID, shortName string) (OAuthApp, error)
	ListOAuthApps(ctx context.Context, orgID string) ([]OAuthApp, error)
	DeleteOAuthApp(ctx context.Context, orgID, shortName string) error

	CreateAuthProvider(ctx context.Context, a AuthProvider) error
	GetAuthProvider(ctx context.Context, orgID, readableID string) (AuthProvider, error)
	GetAuthProviderByID(ctx context.Context, orgID, id string) (AuthProvider, error)
	ListAuthProviders(ctx context.Context, orgID string) ([]AuthProvider, error)
	// UpdateAuthProvider saves name, credentials and modified time.
	UpdateAuthProvider(ctx context.Context, a AuthProvider) error
	// DeleteAuthProvider removes a provider no connection uses; ErrConflict otherwise.
	DeleteAuthProvider(ctx context.Context, orgID, id string) error

	CreateApplication(ctx context.Context, a Application) error
	ApplicationByClientID(ctx context.Context, clientID string) (Application, error)
	ListApplications(ctx context.Context, orgID string) ([]Application, error)

	// EnsureWorkspace returns the organization's workspace for an external
	// user id, creating it (with id and at) when absent; safe under races.
	EnsureWorkspace(ctx context.Context, orgID, externalUserID, id string, at time.Time) (Workspace, error)
	GetWorkspace(ctx context.Context, orgID, id string) (Workspace, error)
	GetWorkspaceByExternal(ctx context.Context, orgID, externalUserID string) (Workspace, error)
	ListWorkspaces(ctx context.Context, orgID string) ([]Workspace, error)

	CreateSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	RetireSigningKey(ctx context.Context, id string, at time.Time) error

	CreateSourceTemplate(ctx context.Context, t SourceTemplate) error
	GetSourceTemplate(ctx context.Context, orgID, id string) (SourceTemplate, error)
	ListSourceTemplates(ctx context.Context, orgID string) ([]SourceTemplate, error)
	DeleteSourceTemplate(ctx context.Context, orgID, id string) error

	// CreateSyncJob stores a new job unless the connection has an active
	// one (ErrConflict).
	CreateSyncJob(ctx context.Context, j SyncJob) error
	GetSyncJob(ctx context.Context, orgID, id string) (SyncJob, error)
	ListSyncJobs(ctx context.Context, orgID, connectionID string, limit int) ([]SyncJob, error)
	// UpdateSyncJob is a read-modify-write of one job in a transaction.
	UpdateSyncJob(ctx context.Context, orgID, id string, update func(j *SyncJob) error) (SyncJob, error)
	SyncJobStats(ctx context.Context, orgID, connectionID string) (JobStats, error)
	// CountSyncJobs counts jobs (all organizations) in a status.
	CountSyncJobs(ctx context.Context, status string) (int, error)
	// ClaimSyncJob makes worker the one running an active job, if no other
	// worker holds it with a heartbeat after staleBefore.
	ClaimSyncJob(ctx context.Context, id, worker string, now, staleBefore time.Time) (bool, error)
	// HeartbeatSyncJob renews worker's hold; false means it lost the job.
	HeartbeatSyncJob(ctx context.Context, id, worker string, now time.Time) (bool, error)
	// ListStaleSyncJobs lists active jobs nobody has heartbeated since staleBefore.
	ListStaleSyncJobs(ctx context.Context, staleBefore time.Time, limit int) ([]SyncJob, error)

	// UpsertRecords stores a page of records seen by job, keyed by
	// (connection, entity type, upstream id), counts what changed, and adds
	// the counts to the job's counters in the same transaction.
	UpsertRecords(ctx context.Context, recs []Record, jobID string) (inserted, updated, kept int, err error)
	// DeleteUnseenRecords removes a connection's records of an entity type
	// that job did not see (after a full sync).
	DeleteUnseenRecords(ctx context.Context, connectionID, entityType, jobID string) (int, error)
	CountRecords(ctx context.Context, orgID, collectionID string) (int, error)
	// GetSyncCursor returns the last value an incremental sync saw ("" if none).
	GetSyncCursor(ctx context.Context, connectionID, entityType string) (string, error)
	SetSyncCursor(ctx context.Context, connectionID, entityType, value string, at time.Time) error
	SearchRecords(ctx context.Context, orgID, collectionID, query string, limit int) ([]SearchHit, error)

	CreateWebhook(ctx context.Context, w Webhook) error
	GetWebhook(ctx context.Context, orgID, id string) (Webhook, error)
	ListWebhooks(ctx context.Context, orgID string) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, orgID, id string) error
	CreateDelivery(ctx context.Context, d WebhookDelivery) error
	GetDelivery(ctx context.Context, id string) (WebhookDelivery, error)
	UpdateDelivery(ctx context.Context, d WebhookDelivery) error
	ListDeliveries(ctx context.Context, orgID, webhookID string, limit int) ([]WebhookDelivery, error)

	// ListScheduledConnections returns connections (of every organization)
	// that have a schedule, after afterID, for the scheduler.
	ListScheduledConnections(ctx context.Context, afterID string, limit int) ([]SourceConnection, error)
	// ClaimScheduleTick records that a connection's schedule fired for the
	// given minute, if nobody did yet; it reports whether this caller won.
	ClaimScheduleTick(ctx context.Context, connectionID string, minute time.Time) (bool, error)

	CreateOAuthSecret(ctx context.Context, s OAuthSecret) error
	// UseOAuthSecret marks a secret used and returns it, if it is the
	// organization's, of that workspace and source, unused and unexpired;
	// else ErrNotFound (and the secret stays usable).
	UseOAuthSecret(ctx context.Context, orgID, workspaceID, shortName, id string, now time.Time) (OAuthSecret, error)

	CreateOAuthSession(ctx context.Context, s OAuthSession) error
	// UseSessionCode marks the auth-URL code used and returns its session,
	// if it exists, is unused and unexpired; else ErrNotFound.
	UseSessionCode(ctx context.Context, codeHash []byte, now time.Time) (OAuthSession, error)
	// UseSessionState does the same for the state.
	UseSessionState(ctx context.Context, stateHash []byte, now time.Time) (OAuthSession, error)

	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, orgID string, f AuditFilter) ([]AuditEvent, error)
	// PruneAudit deletes audit events created before the given time (retention).
	PruneAudit(ctx context.Context, before time.Time) (int, error)
}
