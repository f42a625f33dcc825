package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/store"
)

const jobCols = `id, organization_id, source_connection_id, status, force_full_sync, ciphertext, key_id, entities_inserted, entities_updated,
	entities_deleted, entities_kept, entities_failed, error, error_category, created_at, started_at, completed_at`

func scanJob(sc scanner) (store.SyncJob, error) {
	var j store.SyncJob
	var full int
	var keyID int64
	var started, completed sql.NullTime
	err := sc.Scan(&j.ID, &j.OrganizationID, &j.SourceConnectionID, &j.Status, &full, &j.Ciphertext, &keyID, &j.Inserted, &j.Updated,
		&j.Deleted, &j.Kept, &j.Failed, &j.Error, &j.ErrorCategory, &j.CreatedAt, &started, &completed)
	j.ForceFullSync, j.KeyID = full != 0, uint32(keyID)
	j.CreatedAt, j.StartedAt, j.CompletedAt = j.CreatedAt.UTC(), timePtr(started), timePtr(completed)
	return j, err
}

func bytesOrNil(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreateSyncJob stores a job unless one is active for the connection (a
// partial unique index makes that hold across replicas).
func (s *Store) CreateSyncJob(ctx context.Context, j store.SyncJob) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO sync_jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, '', '', ?, NULL, NULL)`,
		j.ID, j.OrganizationID, j.SourceConnectionID, j.Status, boolInt(j.ForceFullSync), bytesOrNil(j.Ciphertext), int64(j.KeyID), utc(j.CreatedAt))
	if err != nil && s.f.isUnique(err) {
		return fmt.Errorf("a sync job is already pending or running: %w", store.ErrConflict)
	}
	return s.wrap(err, "create sync job")
}

// GetSyncJob finds a job.
func (s *Store) GetSyncJob(ctx context.Context, orgID, id string) (store.SyncJob, error) {
	j, err := scanJob(s.queryRow(ctx, s.db, `SELECT `+jobCols+` FROM sync_jobs WHERE organization_id = ? AND id = ?`, orgID, id))
	return j, s.wrap(err, "sync job")
}

// ListSyncJobs lists a connection's jobs, newest first.
func (s *Store) ListSyncJobs(ctx context.Context, orgID, connectionID string, limit int) ([]store.SyncJob, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+jobCols+` FROM sync_jobs WHERE organization_id = ? AND source_connection_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, orgID, connectionID, limit)
	return collect(s, rows, err, "list sync jobs", scanJob)
}

// UpdateSyncJob is a read-modify-write of one job.
func (s *Store) UpdateSyncJob(ctx context.Context, orgID, id string, update func(j *store.SyncJob) error) (store.SyncJob, error) {
	var out store.SyncJob
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		j, err := scanJob(s.queryRow(ctx, tx, `SELECT `+jobCols+` FROM sync_jobs WHERE organization_id = ? AND id = ?`+s.f.lockSuffix(), orgID, id))
		if err != nil {
			return s.wrap(err, "sync job")
		}
		if err := update(&j); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `UPDATE sync_jobs SET status = ?, ciphertext = ?, key_id = ?, entities_inserted = ?, entities_updated = ?,
			entities_deleted = ?, entities_kept = ?, entities_failed = ?, error = ?, error_category = ?, started_at = ?, completed_at = ?
			WHERE id = ?`, j.Status, bytesOrNil(j.Ciphertext), int64(j.KeyID), j.Inserted, j.Updated, j.Deleted, j.Kept, j.Failed, j.Error,
			j.ErrorCategory, utcPtr(j.StartedAt), utcPtr(j.CompletedAt), j.ID)
		out = j
		return s.wrap(err, "update sync job")
	})
	return out, err
}

// SyncJobStats summarises a connection's jobs.
func (s *Store) SyncJobStats(ctx context.Context, orgID, connectionID string) (store.JobStats, error) {
	var st store.JobStats
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0)
		FROM sync_jobs WHERE organization_id = ? AND source_connection_id = ?`, store.JobCompleted, store.JobFailed, orgID, connectionID).Scan(&st.Total, &st.Successful, &st.Failed)
	if err != nil || st.Total == 0 {
		return st, s.wrap(err, "sync job stats")
	}
	last, err := s.ListSyncJobs(ctx, orgID, connectionID, 1)
	if err == nil && len(last) == 1 {
		st.Last = &last[0]
	}
	return st, err
}

// UpsertRecords stores one page of records in one transaction: one read of
// what exists, one multi-row insert of the new, one update marking the
// unchanged as seen, one update per changed record, and the job's counters.
func (s *Store) UpsertRecords(ctx context.Context, recs []store.Record, jobID string) (inserted, updated, kept int, err error) {
	type key struct{ conn, entity string }
	groups := map[key][]store.Record{}
	for _, r := range recs {
		k := key{r.SourceConnectionID, r.EntityType}
		groups[k] = append(groups[k], r)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.f.name == "postgres" {
			// Plan these lookups for the table as it is now. A cached generic
			// plan made while the table was nearly empty (a first sync) is a
			// sequential scan, kept until the next ANALYZE: each page then
			// reads every record stored so far (45 ms a page by 20,000).
			if _, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_custom_plan`); err != nil {
				return s.wrap(err, "upsert records")
			}
		}
		for k, rs := range groups {
			existing := map[string][2]string{} // upstream id -> (id, hash)
			args := []any{k.conn, k.entity}
			marks := make([]string, len(rs))
			for i, r := range rs {
				marks[i] = "?"
				args = append(args, r.UpstreamID)
			}
			rows, err := s.query(ctx, tx, `SELECT upstream_id, id, content_hash FROM records WHERE source_connection_id = ? AND entity_type = ?
				AND upstream_id IN (`+strings.Join(marks, ", ")+`)`, args...)
			if err != nil {
				return s.wrap(err, "upsert records")
			}
			for rows.Next() {
				var up, id, hash string
				if err := rows.Scan(&up, &id, &hash); err != nil {
					rows.Close()
					return s.wrap(err, "upsert records")
				}
				existing[up] = [2]string{id, hash}
			}
			rows.Close()
			var insertVals []string
			var insertArgs, keptIDs []any
			seen := map[string]bool{}
			for _, r := range rs {
				if seen[r.UpstreamID] {
					continue // a page listing one record twice counts it once
				}
				seen[r.UpstreamID] = true
				old, ok := existing[r.UpstreamID]
				switch {
				case !ok:
					if r.ID == "" {
						r.ID = uuid.Must(uuid.NewV7()).String()
					}
					insertVals = append(insertVals, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
					insertArgs = append(insertArgs, r.ID, r.OrganizationID, r.CollectionID, r.SourceConnectionID, r.Source, r.EntityType, r.UpstreamID,
						r.Title, r.Body, r.ContentHash, jobID, utc(r.UpdatedAt))
					inserted++
				case old[1] != r.ContentHash:
					if _, err := s.exec(ctx, tx, `UPDATE records SET title = ?, body = ?, content_hash = ?, seen_job_id = ?, updated_at = ? WHERE id = ?`,
						r.Title, r.Body, r.ContentHash, jobID, utc(r.UpdatedAt), old[0]); err != nil {
						return s.wrap(err, "upsert records")
					}
					updated++
				default:
					keptIDs = append(keptIDs, old[0])
					kept++
				}
			}
			if len(insertVals) > 0 {
				if _, err := s.exec(ctx, tx, `INSERT INTO records (id, organization_id, collection_id, source_connection_id, source, entity_type, upstream_id,
					title, body, content_hash, seen_job_id, updated_at) VALUES `+strings.Join(insertVals, ", "), insertArgs...); err != nil {
					return s.wrap(err, "upsert records")
				}
			}
			if len(keptIDs) > 0 {
				q := strings.TrimSuffix(strings.Repeat("?, ", len(keptIDs)), ", ")
				if _, err := s.exec(ctx, tx, `UPDATE records SET seen_job_id = ? WHERE id IN (`+q+`)`, append([]any{jobID}, keptIDs...)...); err != nil {
					return s.wrap(err, "upsert records")
				}
			}
		}
		// The job's counters move with the records, in the same commit: a
		// worker killed between two commits would otherwise lose counts.
		_, err := s.exec(ctx, tx, `UPDATE sync_jobs SET entities_inserted = entities_inserted + ?, entities_updated = entities_updated + ?,
			entities_kept = entities_kept + ? WHERE id = ?`, inserted, updated, kept, jobID)
		return s.wrap(err, "upsert records")
	})
	if err != nil {
		return 0, 0, 0, err
	}
	return inserted, updated, kept, nil
}

// DeleteUnseenRecords removes records the job did not see.
func (s *Store) DeleteUnseenRecords(ctx context.Context, connectionID, entityType, jobID string) (int, error) {
	res, err := s.exec(ctx, s.w, `DELETE FROM records WHERE source_connection_id = ? AND entity_type = ? AND seen_job_id <> ?`, connectionID, entityType, jobID)
	if err != nil {
		return 0, s.wrap(err, "delete records")
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap(err, "delete records")
}

// CountRecords counts a collection's records.
func (s *Store) CountRecords(ctx context.Context, orgID, collectionID string) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM records WHERE organization_id = ? AND collection_id = ?`, orgID, collectionID).Scan(&n)
	return n, s.wrap(err, "count records")
}

// ftsQuery turns free text into an FTS5 query of quoted terms (all must
// match), so user input cannot use FTS syntax.
func ftsQuery(q string) string {
	var terms []string
	for _, w := range strings.Fields(q) {
		terms = append(terms, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
	}
	return strings.Join(terms, " ")
}

// SearchRecords runs a full-text search over a collection.
func (s *Store) SearchRecords(ctx context.Context, orgID, collectionID, query string, limit int) ([]store.SearchHit, error) {
	const cols = `r.id, r.organization_id, r.collection_id, r.source_connection_id, r.source, r.entity_type, r.upstream_id, r.title, r.body, r.content_hash, r.updated_at`
	var q string
	var args []any
	if s.f.name == "sqlite" {
		fq := ftsQuery(query)
		if fq == "" {
			return []store.SearchHit{}, nil
		}
		q = `SELECT ` + cols + `, snippet(records_fts, 1, '[', ']', '…', 16), -bm25(records_fts)
			FROM records_fts JOIN records r ON r.rowid = records_fts.rowid
			WHERE records_fts MATCH ? AND r.organization_id = ? AND r.collection_id = ? ORDER BY bm25(records_fts) LIMIT ?`
		args = []any{fq, orgID, collectionID, limit}
	} else {
		q = `SELECT ` + cols + `, ts_headline('simple', r.body, q, 'StartSel=[,StopSel=],MaxWords=16,MinWords=5'), ts_rank(r.search, q)
			FROM records r, plainto_tsquery('simple', ?) q
			WHERE r.search @@ q AND r.organization_id = ? AND r.collection_id = ? ORDER BY ts_rank(r.search, q) DESC LIMIT ?`
		args = []any{query, orgID, collectionID, limit}
	}
	rows, err := s.query(ctx, s.db, q, args...)
	return collect(s, rows, err, "search records", func(sc scanner) (store.SearchHit, error) {
		var h store.SearchHit
		err := sc.Scan(&h.ID, &h.OrganizationID, &h.CollectionID, &h.SourceConnectionID, &h.Source, &h.EntityType, &h.UpstreamID, &h.Title,
			&h.Body, &h.ContentHash, &h.UpdatedAt, &h.Snippet, &h.Score)
		h.UpdatedAt = h.UpdatedAt.UTC()
		return h, err
	})
}

// ClaimSyncJob takes an active job for worker unless someone live holds it.
func (s *Store) ClaimSyncJob(ctx context.Context, id, worker string, now, staleBefore time.Time) (bool, error) {
	res, err := s.exec(ctx, s.w, `UPDATE sync_jobs SET worker = ?, heartbeat_at = ?
		WHERE id = ? AND status IN (?, ?, ?, ?) AND (worker IS NULL OR worker = ? OR heartbeat_at IS NULL OR heartbeat_at < ?)`,
		worker, utc(now), id, store.JobCreated, store.JobPending, store.JobRunning, store.JobCancelling, worker, utc(staleBefore))
	if err != nil {
		return false, s.wrap(err, "claim sync job")
	}
	n, err := res.RowsAffected()
	return n == 1, s.wrap(err, "claim sync job")
}

// HeartbeatSyncJob renews a worker's hold on a job.
func (s *Store) HeartbeatSyncJob(ctx context.Context, id, worker string, now time.Time) (bool, error) {
	res, err := s.exec(ctx, s.w, `UPDATE sync_jobs SET heartbeat_at = ? WHERE id = ? AND worker = ?`, utc(now), id, worker)
	if err != nil {
		return false, s.wrap(err, "heartbeat sync job")
	}
	n, err := res.RowsAffected()
	return n == 1, s.wrap(err, "heartbeat sync job")
}

// ListStaleSyncJobs finds active jobs without a recent heartbeat.
func (s *Store) ListStaleSyncJobs(ctx context.Context, staleBefore time.Time, limit int) ([]store.SyncJob, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+jobCols+` FROM sync_jobs WHERE status IN (?, ?, ?, ?)
		AND ((heartbeat_at IS NOT NULL AND heartbeat_at < ?) OR (heartbeat_at IS NULL AND created_at < ?)) ORDER BY created_at LIMIT ?`,
		store.JobCreated, store.JobPending, store.JobRunning, store.JobCancelling, utc(staleBefore), utc(staleBefore), limit)
	return collect(s, rows, err, "list stale sync jobs", scanJob)
}

// GetSyncCursor returns an entity's incremental cursor.
func (s *Store) GetSyncCursor(ctx context.Context, connectionID, entityType string) (string, error) {
	var v string
	err := s.queryRow(ctx, s.db, `SELECT value FROM sync_cursors WHERE source_connection_id = ? AND entity_type = ?`, connectionID, entityType).Scan(&v)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return v, s.wrap(err, "sync cursor")
}

// SetSyncCursor stores an entity's incremental cursor.
func (s *Store) SetSyncCursor(ctx context.Context, connectionID, entityType, value string, at time.Time) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO sync_cursors (source_connection_id, entity_type, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (source_connection_id, entity_type) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		connectionID, entityType, value, utc(at))
	return s.wrap(err, "set sync cursor")
}

// CountSyncJobs counts jobs in a status.
func (s *Store) CountSyncJobs(ctx context.Context, status string) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM sync_jobs WHERE status = ?`, status).Scan(&n)
	return n, s.wrap(err, "count sync jobs")
}
