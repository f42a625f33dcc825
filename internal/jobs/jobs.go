package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/connection"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/execute"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Store is what jobs need from storage.
type Store interface {
	CreateSyncJob(ctx context.Context, j store.SyncJob) error
	GetSyncJob(ctx context.Context, orgID, id string) (store.SyncJob, error)
	ListSyncJobs(ctx context.Context, orgID, connectionID string, limit int) ([]store.SyncJob, error)
	UpdateSyncJob(ctx context.Context, orgID, id string, update func(j *store.SyncJob) error) (store.SyncJob, error)
	UpsertRecords(ctx context.Context, recs []store.Record, jobID string) (inserted, updated, kept int, err error)
	DeleteUnseenRecords(ctx context.Context, connectionID, entityType, jobID string) (int, error)
	SearchRecords(ctx context.Context, orgID, collectionID, query string, limit int) ([]store.SearchHit, error)
	ClaimSyncJob(ctx context.Context, id, worker string, now, staleBefore time.Time) (bool, error)
	HeartbeatSyncJob(ctx context.Context, id, worker string, now time.Time) (bool, error)
	ListStaleSyncJobs(ctx context.Context, staleBefore time.Time, limit int) ([]store.SyncJob, error)
	GetSyncCursor(ctx context.Context, connectionID, entityType string) (string, error)
	SetSyncCursor(ctx context.Context, connectionID, entityType, value string, at time.Time) error
}

// Connections is what jobs need of the connection service.
type Connections interface {
	Get(ctx context.Context, orgID, id string) (connection.View, error)
	Source(shortName string) (*catalog.Source, error)
	Fresh(ctx context.Context, orgID, id string, o refresh.GetOptions) (refresh.Fresh, error)
	GetCollection(ctx context.Context, orgID, readableID string) (store.Collection, error)
	List(ctx context.Context, orgID, collection string, skip, limit int) ([]connection.View, error)
}

// Executor runs one entity action.
type Executor interface {
	Execute(ctx context.Context, orgID, connID string, req execute.Request) (execute.Result, error)
}

// Service creates, runs and cancels sync jobs.
type Service struct {
	st     Store
	conns  Connections
	exec   Executor
	sealer credential.Sealer
	log    *slog.Logger
	now    func() time.Time
	queue  *Queue
	events Events
	sched  ScheduleStore
	// MaxPages bounds one entity's pages in one run.
	MaxPages int
	// worker names this process in job holds; RescueAfter is how long a
	// hold lasts without a heartbeat before another worker may take over.
	worker      string
	RescueAfter time.Duration

	ended sync.Map // status -> *atomic.Int64, jobs ended by this process
}

// Ended counts the jobs this process ended, by final status (for metrics).
func (s *Service) Ended(status string) int64 {
	if v, ok := s.ended.Load(status); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// heartbeatEvery is how often a running sync renews its hold: a second, or
// a quarter of RescueAfter when that is shorter.
func (s *Service) heartbeatEvery() time.Duration {
	return min(time.Second, s.RescueAfter/4)
}

// New returns a Service; attach a queue with SetQueue before Run.
func New(st Store, conns Connections, exec Executor, c credential.Cipher, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, conns: conns, exec: exec, sealer: credential.Sealer{C: c}, log: log, now: now, MaxPages: 10000,
		worker: uuid.NewString(), RescueAfter: 2 * time.Minute}
}

// SetScheduleStore enables Tick.
func (s *Service) SetScheduleStore(st ScheduleStore) { s.sched = st }

// SetQueue attaches the queue jobs are enqueued on.
func (s *Service) SetQueue(q *Queue) { s.queue = q }

// Events receives what happened (webhooks).
type Events interface {
	Emit(ctx context.Context, orgID, event string, data map[string]any)
}

// SetEvents attaches the event sink.
func (s *Service) SetEvents(e Events) { s.events = e }

func (s *Service) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func overrideAD(orgID, jobID string) []byte {
	return credential.ADFor(store.TableSyncJobs, orgID, jobID)
}

// Run starts a sync of a connection. An override token is used for this
// run only: never refreshed, never stored but sealed in the job until it
// ends. Without one, the stored credential must be usable now (a refresh
// that fails permanently answers 400 and marks the connection needs_reauth).
func (s *Service) Run(ctx context.Context, orgID, connID string, force bool, override vault.Secret) (store.SyncJob, error) {
	v, err := s.conns.Get(ctx, orgID, connID)
	if err != nil {
		return store.SyncJob{}, err
	}
	src, err := s.conns.Source(v.ShortName)
	if err != nil {
		return store.SyncJob{}, err
	}
	if !override.IsZero() {
		if _, ok := src.Method(catalog.AuthOAuth2); !ok || v.AuthMethod == connection.MethodDirect {
			return store.SyncJob{}, apperr.Invalid(apperr.Field("value_error", "Token override is only supported for OAuth2 sources", "body", "access_token"))
		}
	} else if _, err := s.conns.Fresh(ctx, orgID, connID, refresh.GetOptions{}); err != nil {
		return store.SyncJob{}, err
	}
	j := store.SyncJob{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: orgID, SourceConnectionID: connID, Status: store.JobPending,
		ForceFullSync: force, CreatedAt: s.nowUTC()}
	if !override.IsZero() {
		ct, keyID, err := s.sealer.SealAD(overrideAD(orgID, j.ID), credential.Payload{Fields: map[string]vault.Secret{"access_token": override}})
		if err != nil {
			return store.SyncJob{}, err
		}
		j.Ciphertext, j.KeyID = ct, keyID
	}
	if err := s.st.CreateSyncJob(ctx, j); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.SyncJob{}, apperr.Conflict("A sync job is already pending or running for source connection '%s'", connID)
		}
		return store.SyncJob{}, err
	}
	if s.queue == nil {
		return j, errors.New("jobs: no queue attached")
	}
	if err := s.queue.Insert(ctx, SyncArgs{JobID: j.ID, OrganizationID: orgID}, nil); err != nil {
		_, _ = s.finish(context.WithoutCancel(ctx), orgID, j.ID, store.JobFailed, "could not enqueue the job", "internal")
		return store.SyncJob{}, err
	}
	return j, nil
}

// RunIfActive starts a first sync for a connection just created with
// sync_immediately, when it is usable now (not waiting for OAuth consent).
func (s *Service) RunIfActive(ctx context.Context, v connection.View) (*store.SyncJob, error) {
	if v.Status != store.StatusActive {
		return nil, nil
	}
	j, err := s.Run(ctx, v.OrganizationID, v.ID, false, vault.Secret{})
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// RefreshAll runs every connection of a collection; connections that cannot
// run now (already running, needing re-authorization) are reported, not fatal.
func (s *Service) RefreshAll(ctx context.Context, orgID, readableID string) ([]store.SyncJob, map[string]string, error) {
	if _, err := s.conns.GetCollection(ctx, orgID, readableID); err != nil {
		return nil, nil, err
	}
	conns, err := s.conns.List(ctx, orgID, readableID, 0, 10000)
	if err != nil {
		return nil, nil, err
	}
	var started []store.SyncJob
	skipped := map[string]string{}
	for _, c := range conns {
		j, err := s.Run(ctx, orgID, c.ID, false, vault.Secret{})
		if err != nil {
			if ae, ok := apperr.As(err); ok {
				skipped[c.ID] = ae.Msg
				continue
			}
			return started, skipped, err
		}
		started = append(started, j)
	}
	return started, skipped, nil
}

// Get returns a connection's job.
func (s *Service) Get(ctx context.Context, orgID, connID, jobID string) (store.SyncJob, error) {
	j, err := s.st.GetSyncJob(ctx, orgID, jobID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.SourceConnectionID != connID) {
		return store.SyncJob{}, apperr.NotFound("Sync job '%s' not found", jobID)
	}
	return j, err
}

// List returns a connection's jobs, newest first.
func (s *Service) List(ctx context.Context, orgID, connID string, limit int) ([]store.SyncJob, error) {
	if _, err := s.conns.Get(ctx, orgID, connID); err != nil {
		return nil, err
	}
	return s.st.ListSyncJobs(ctx, orgID, connID, limit)
}

// Cancel asks a pending or running job to stop; the worker stops between
// pages and marks it cancelled.
func (s *Service) Cancel(ctx context.Context, orgID, connID, jobID string) (store.SyncJob, error) {
	if _, err := s.Get(ctx, orgID, connID, jobID); err != nil {
		return store.SyncJob{}, err
	}
	return s.st.UpdateSyncJob(ctx, orgID, jobID, func(j *store.SyncJob) error {
		switch j.Status {
		case store.JobPending, store.JobCreated, store.JobRunning:
			j.Status = store.JobCancelling
		case store.JobCancelling:
		default:
			return apperr.Conflict("Sync job '%s' has already ended (%s)", jobID, j.Status)
		}
		return nil
	})
}

// finish ends a job and erases its override token.
func (s *Service) finish(ctx context.Context, orgID, jobID, status, msg, category string) (store.SyncJob, error) {
	return s.st.UpdateSyncJob(ctx, orgID, jobID, func(j *store.SyncJob) error {
		at := s.nowUTC()
		j.Status, j.Error, j.ErrorCategory, j.CompletedAt, j.Ciphertext, j.KeyID = status, msg, category, &at, nil, 0
		return nil
	})
}

// Search runs a full-text search over a collection.
func (s *Service) Search(ctx context.Context, orgID, readableID, query string, limit int) ([]store.SearchHit, error) {
	c, err := s.conns.GetCollection(ctx, orgID, readableID)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(query) == "" {
		return nil, apperr.Invalid(apperr.Field("missing", "Query parameter 'query' is required", "query", "query"))
	}
	return s.st.SearchRecords(ctx, orgID, c.ID, query, limit)
}

// run works one job (the River worker calls it). Sync failures are
// recorded in the job and not returned, so River does not retry them; a
// returned error means the job could not be worked at all and is retried.
func (s *Service) run(ctx context.Context, a SyncArgs) error {
	j, err := s.st.GetSyncJob(ctx, a.OrganizationID, a.JobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // its connection was deleted
	} else if err != nil {
		return err
	}
	if !j.Active() {
		return nil
	}
	// Hold the job: another worker (a duplicate or rescued queue entry)
	// leaves it alone while this one heartbeats.
	won, err := s.st.ClaimSyncJob(ctx, j.ID, s.worker, s.nowUTC(), s.nowUTC().Add(-s.RescueAfter))
	if err != nil {
		return err
	}
	if !won {
		return nil
	}
	if j.Status == store.JobCancelling {
		_, err := s.finish(ctx, j.OrganizationID, j.ID, store.JobCancelled, "", "")
		return err
	}
	var override string
	if len(j.Ciphertext) > 0 {
		p, err := s.sealer.OpenAD(j.Ciphertext, overrideAD(j.OrganizationID, j.ID))
		if err != nil {
			_, ferr := s.finish(ctx, j.OrganizationID, j.ID, store.JobFailed, "the token override could not be read", "internal")
			return ferr
		}
		override = p.Fields["access_token"].Reveal()
	}
	if _, err := s.st.UpdateSyncJob(ctx, j.OrganizationID, j.ID, func(x *store.SyncJob) error {
		at := s.nowUTC()
		if x.Status != store.JobCancelling { // a cancel that came in meanwhile stands
			x.Status = store.JobRunning
		}
		if x.StartedAt == nil {
			x.StartedAt = &at
		}
		return nil
	}); err != nil {
		return err
	}
	status, msg, category := s.sync(ctx, j, override)
	if status == "" {
		return nil // taken over: the new holder finishes the job
	}
	done, err := s.finish(context.WithoutCancel(ctx), j.OrganizationID, j.ID, status, msg, category)
	if err == nil {
		c, _ := s.ended.LoadOrStore(status, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
	}
	if err == nil && s.events != nil && (status == store.JobCompleted || status == store.JobFailed) {
		event := "sync.completed"
		if status == store.JobFailed {
			event = "sync.failed"
		}
		s.events.Emit(context.WithoutCancel(ctx), j.OrganizationID, event, map[string]any{"job_id": done.ID, "source_connection_id": done.SourceConnectionID,
			"status": done.Status, "entities_inserted": done.Inserted, "entities_updated": done.Updated, "entities_deleted": done.Deleted,
			"entities_kept": done.Kept, "error": done.Error, "error_category": done.ErrorCategory})
	}
	return err
}

// errCancelled stops a sync between pages; errLost stops a worker whose
// hold on the job was taken over (it had stalled past RescueAfter).
var (
	errCancelled = errors.New("cancelled")
	errLost      = errors.New("job taken over by another worker")
)

// sync pages through every list action and upserts records.
func (s *Service) sync(ctx context.Context, j store.SyncJob, override string) (status, msg, category string) {
	v, err := s.conns.Get(ctx, j.OrganizationID, j.SourceConnectionID)
	if err != nil {
		return store.JobFailed, "the connection no longer exists", "internal"
	}
	src, err := s.conns.Source(v.ShortName)
	if err != nil || src.API == nil {
		return store.JobFailed, "the source has nothing to sync", "config"
	}
	var entities []string
	for name, ent := range src.API.Entities {
		if list, ok := ent.Actions["list"]; ok && !needsParams(list) {
			entities = append(entities, name)
		}
	}
	sort.Strings(entities)
	for _, entity := range entities {
		full, err := s.syncEntity(ctx, j, v, entity, src.API.Entities[entity].Actions["list"], override)
		if err != nil {
			return classify(err, override != "")
		}
		if !full {
			continue // an incremental run sees only what changed: nothing is known gone
		}
		n, err := s.st.DeleteUnseenRecords(ctx, v.ID, entity, j.ID)
		if err == nil && n > 0 {
			_, err = s.st.UpdateSyncJob(ctx, j.OrganizationID, j.ID, func(x *store.SyncJob) error { x.Deleted += n; return nil })
		}
		if err != nil {
			return classify(err, override != "")
		}
	}
	return store.JobCompleted, "", ""
}

func needsParams(a *catalog.Action) bool {
	for _, p := range a.Params {
		if p.Required && p.Default == nil {
			return true
		}
	}
	return false
}

// syncEntity pages through one entity. A definition with an incremental
// param asks only for records changed since the last run's highest value
// (unless force_full_sync); it reports whether the run was full.
func (s *Service) syncEntity(ctx context.Context, j store.SyncJob, v connection.View, entity string, act *catalog.Action, override string) (bool, error) {
	full, since, highest := true, "", ""
	if inc := act.Incremental; inc != nil && !j.ForceFullSync {
		var err error
		if since, err = s.st.GetSyncCursor(ctx, v.ID, entity); err != nil {
			return false, err
		}
		full = since == ""
	}
	err := s.pages(ctx, j, v, entity, act, override, since, &highest)
	if err == nil && act.Incremental != nil && highest != "" {
		err = s.st.SetSyncCursor(ctx, v.ID, entity, highest, s.nowUTC())
	}
	return full, err
}

func (s *Service) pages(ctx context.Context, j store.SyncJob, v connection.View, entity string, act *catalog.Action, override, since string, highest *string) error {
	var cursor *string
	var beat time.Time // last heartbeat, on this process's monotonic clock
	for page := 0; page < s.MaxPages; page++ {
		cur, err := s.st.GetSyncJob(ctx, j.OrganizationID, j.ID)
		if err != nil {
			return err
		}
		if cur.Status == store.JobCancelling {
			return errCancelled
		}
		// The hold is renewed (a committed write) at most once per
		// heartbeatEvery, not per page: a fast upstream would otherwise
		// pay a commit per page for a hold that lasts minutes.
		if beat.IsZero() || time.Since(beat) >= s.heartbeatEvery() {
			if held, err := s.st.HeartbeatSyncJob(ctx, j.ID, s.worker, s.nowUTC()); err != nil {
				return err
			} else if !held {
				return errLost
			}
			beat = time.Now()
		}
		params := map[string]any{}
		if cursor != nil {
			params["cursor"] = *cursor
		}
		if since != "" {
			params[act.Incremental.Param] = since
		}
		res, err := s.exec.Execute(ctx, j.OrganizationID, v.ID, execute.Request{Entity: entity, Action: "list", Params: params, Token: override})
		if err != nil {
			var ae *apperr.Error
			if errors.As(err, &ae) && ae.Kind == apperr.KindTooManyRequests && ae.RetryAfter > 0 && ae.RetryAfter <= time.Minute {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(ae.RetryAfter):
				}
				page--
				continue
			}
			return err
		}
		recs := s.records(j, v, entity, res.Result)
		if act.Incremental != nil {
			for _, item := range asList(res.Result) {
				if val, ok := scalarString(execute.Lookup(item, act.Incremental.Field)); ok && later(val, *highest) {
					*highest = val
				}
			}
		}
		if _, _, _, err := s.st.UpsertRecords(ctx, recs, j.ID); err != nil { // counts go to the job in the same commit
			return err
		}
		if res.Cursor == nil || (cursor != nil && *res.Cursor == *cursor) {
			return nil
		}
		cursor = res.Cursor
	}
	return nil
}

// records turns a page of upstream objects into records.
func (s *Service) records(j store.SyncJob, v connection.View, entity string, result any) []store.Record {
	list, _ := result.([]any)
	now := s.nowUTC()
	out := make([]store.Record, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		id := fmt.Sprint(m["id"])
		if m["id"] == nil {
			continue
		}
		body, _ := json.Marshal(m)
		sum := sha256.Sum256(body)
		out = append(out, store.Record{OrganizationID: j.OrganizationID, CollectionID: v.CollectionID, SourceConnectionID: v.ID,
			Source: v.ShortName, EntityType: entity, UpstreamID: id, Title: title(m), Body: string(body),
			ContentHash: hex.EncodeToString(sum[:]), UpdatedAt: now})
	}
	return out
}

// title picks a human title from common fields (HubSpot keeps them under
// properties).
func title(m map[string]any) string {
	keys := []string{"title", "name", "subject", "full_name", "dealname", "email", "login"}
	for _, obj := range []map[string]any{m, asMap(m["properties"])} {
		for _, k := range keys {
			if s, ok := obj[k].(string); ok && s != "" {
				return s
			}
		}
	}
	if p := asMap(m["properties"]); p != nil {
		first, _ := p["firstname"].(string)
		last, _ := p["lastname"].(string)
		return strings.TrimSpace(first + " " + last)
	}
	return ""
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// classify maps a sync failure onto the job's error and category.
func classify(err error, override bool) (status, msg, category string) {
	switch {
	case errors.Is(err, errCancelled):
		return store.JobCancelled, "", ""
	case errors.Is(err, errLost):
		return "", "", ""
	case errors.Is(err, execute.ErrUpstreamUnauthorized) && override:
		return store.JobFailed, "The provided access token was rejected by the provider or has expired; token overrides are not refreshed", "auth"
	case errors.Is(err, execute.ErrUpstreamUnauthorized), errors.Is(err, refresh.ErrReauth):
		var ae *apperr.Error
		m := "The provider rejected the stored credential"
		if errors.As(err, &ae) {
			m = ae.Msg
		}
		return store.JobFailed, m, "auth"
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return store.JobFailed, ae.Msg, "upstream"
	}
	return store.JobFailed, "The sync failed", "internal"
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// later compares cursor values: numerically when both are numbers (Unix
// times), else as strings (RFC 3339 times sort as strings).
func later(a, b string) bool {
	if b == "" {
		return true
	}
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil {
		return fa > fb
	}
	return a > b
}
