// Package jobs runs sync jobs on a durable River queue (riverpgxv5 on
// Postgres, riversqlite on the embedded SQLite default): a sync pages
// through every list action of a source and upserts the records into the
// connection's collection, with an optional one-off token override that is
// kept only sealed and only until the job ends.
package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// SyncArgs is the queued job: which sync job record to run. It carries no
// secret (an override token stays sealed in the job record).
type SyncArgs struct {
	JobID          string `json:"job_id"`
	OrganizationID string `json:"organization_id"`
}

// Kind names the River job kind.
func (SyncArgs) Kind() string { return "valetkey_sync" }

type syncWorker struct {
	river.WorkerDefaults[SyncArgs]
	svc *Service
}

func (w *syncWorker) Work(ctx context.Context, j *river.Job[SyncArgs]) error {
	return w.svc.run(ctx, j.Args)
}

// Queue is the River client, whichever the database.
type Queue struct {
	insert func(ctx context.Context, a river.JobArgs, o *river.InsertOpts) error
	start  func(ctx context.Context) error
	stop   func(ctx context.Context) error
	closer func()
}

// QueueOptions tune the queue.
type QueueOptions struct {
	Workers      int           // default 4
	PollInterval time.Duration // default 1s (tests: shorter)
	// Register adds more workers (e.g. webhook delivery).
	Register []func(*river.Workers)
	// RetryPolicy overrides River's backoff (tests: short delays).
	RetryPolicy river.ClientRetryPolicy
	// RescueAfter hands a job a dead replica left running to another
	// worker (default 2m).
	RescueAfter time.Duration
	// TickInterval is how often the scheduler looks at cron schedules
	// (default 20s; schedules have minute resolution).
	TickInterval time.Duration
}

func newQueue[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], svc *Service, log *slog.Logger, o QueueOptions) (*Queue, error) {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("jobs: river migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("jobs: river migrate: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &syncWorker{svc: svc})
	river.AddWorker(workers, &tickWorker{svc: svc})
	if o.RescueAfter == 0 {
		o.RescueAfter = 2 * time.Minute
	}
	if o.TickInterval == 0 {
		o.TickInterval = 20 * time.Second
	}
	for _, r := range o.Register {
		r(workers)
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.Workers}},
		Workers:           workers,
		Logger:            log,
		FetchPollInterval: o.PollInterval,
		FetchCooldown:     o.PollInterval / 2,
		JobTimeout:        -1, // a sync ends by itself or by cancel
		// A replica that died mid-run leaves its job running; River hands it
		// to another worker after this long, and the sync resumes (upserts are
		// keyed, so nothing is duplicated).
		RescueStuckJobsAfter: o.RescueAfter,
		MaxAttempts:          5,
		RetryPolicy:          o.RetryPolicy,
		// The leader enqueues the scheduler's tick; ClaimScheduleTick makes a
		// schedule fire once per minute whatever the number of replicas.
		PeriodicJobs: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(o.TickInterval),
			func() (river.JobArgs, *river.InsertOpts) { return TickArgs{}, &river.InsertOpts{MaxAttempts: 1} },
			&river.PeriodicJobOpts{RunOnStart: true})},
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: river client: %w", err)
	}
	return &Queue{
		insert: func(ctx context.Context, a river.JobArgs, opts *river.InsertOpts) error {
			_, err := client.Insert(ctx, a, opts)
			return err
		},
		start: client.Start,
		stop:  client.Stop,
	}, nil
}

// NewSQLiteQueue runs River on the SQLite file through the store's writer
// connection (SQLite has one writer at a time).
func NewSQLiteQueue(ctx context.Context, db *sql.DB, svc *Service, log *slog.Logger, o QueueOptions) (*Queue, error) {
	return newQueue(ctx, riversqlite.New(db), svc, log, o)
}

// NewPostgresQueue runs River on Postgres with its own pgx pool.
func NewPostgresQueue(ctx context.Context, url string, svc *Service, log *slog.Logger, o QueueOptions) (*Queue, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("jobs: postgres pool: %w", err)
	}
	q, err := newQueue(ctx, riverpgxv5.New(pool), svc, log, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	q.closer = pool.Close
	return q, nil
}

// Insert enqueues a job.
func (q *Queue) Insert(ctx context.Context, a river.JobArgs, o *river.InsertOpts) error {
	return q.insert(ctx, a, o)
}

// Start begins working jobs.
func (q *Queue) Start(ctx context.Context) error { return q.start(ctx) }

// Stop waits for running jobs to reach a stopping point, then closes.
func (q *Queue) Stop(ctx context.Context) error {
	err := q.stop(ctx)
	if q.closer != nil {
		q.closer()
	}
	return err
}
