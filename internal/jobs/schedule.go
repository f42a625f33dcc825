package jobs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/riverqueue/river"
	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/connection"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// ScheduleStore is what the scheduler needs from storage.
type ScheduleStore interface {
	ListScheduledConnections(ctx context.Context, afterID string, limit int) ([]store.SourceConnection, error)
	ClaimScheduleTick(ctx context.Context, connectionID string, minute time.Time) (bool, error)
}

// TickArgs is the scheduler's periodic job.
type TickArgs struct{}

// Kind names the River job kind.
func (TickArgs) Kind() string { return "valetkey_schedule_tick" }

type tickWorker struct {
	river.WorkerDefaults[TickArgs]
	svc *Service
}

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[TickArgs]) error {
	if err := w.svc.RescueStale(ctx); err != nil {
		return err
	}
	_, err := w.svc.Tick(ctx)
	return err
}

// RescueStale re-queues active jobs whose worker stopped heartbeating (a
// replica that died mid-sync). The new run claims the job before working
// it, so a worker that was only slow keeps it; records are keyed, so the
// resumed sync duplicates nothing.
func (s *Service) RescueStale(ctx context.Context) error {
	stale, err := s.st.ListStaleSyncJobs(ctx, s.nowUTC().Add(-s.RescueAfter), 100)
	if err != nil || s.queue == nil {
		return err
	}
	for _, j := range stale {
		s.log.WarnContext(ctx, "resuming a sync job whose worker stopped", "job_id", j.ID, "source_connection_id", j.SourceConnectionID)
		if err := s.queue.Insert(ctx, SyncArgs{JobID: j.ID, OrganizationID: j.OrganizationID}, nil); err != nil {
			return err
		}
	}
	return nil
}

// Tick runs every connection whose cron matches the current minute. Each
// (connection, minute) is claimed in the database first, so however many
// replicas tick, a schedule fires once per minute it matches.
func (s *Service) Tick(ctx context.Context) (int, error) {
	if s.sched == nil {
		return 0, nil
	}
	minute := s.now().UTC().Truncate(time.Minute)
	started, after := 0, ""
	for {
		conns, err := s.sched.ListScheduledConnections(ctx, after, 500)
		if err != nil {
			return started, err
		}
		if len(conns) == 0 {
			return started, nil
		}
		for _, c := range conns {
			after = c.ID
			var sch struct {
				Cron string `json:"cron"`
			}
			if json.Unmarshal(c.Schedule, &sch) != nil || sch.Cron == "" || c.Status == store.StatusNeedsReauth || c.Status == store.StatusPendingAuth {
				continue
			}
			spec, err := connection.ParseCron(sch.Cron)
			if err != nil || !spec.Next(minute.Add(-time.Second)).Equal(minute) {
				continue
			}
			won, err := s.sched.ClaimScheduleTick(ctx, c.ID, minute)
			if err != nil {
				return started, err
			}
			if !won {
				continue
			}
			if _, err := s.Run(ctx, c.OrganizationID, c.ID, false, vault.Secret{}); err != nil {
				if _, ok := apperr.As(err); ok {
					s.log.InfoContext(ctx, "scheduled sync not started", "source_connection_id", c.ID, "reason", err.Error())
					continue
				}
				return started, err
			}
			started++
		}
	}
}
