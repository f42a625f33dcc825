package sqlstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/valetkey/valetkey/internal/store"
)

// auditBatcher group-commits audit events: each caller waits until its
// event is durable, but events that arrive while a write is in flight go
// into the next write together (one multi-row INSERT, one commit), so a
// busy /token route pays one commit per batch instead of one per read.
type auditBatcher struct {
	s        *Store
	once     sync.Once
	stopOnce sync.Once
	reqs     chan auditReq
	stop     chan struct{}
	done     chan struct{}
}

// errClosed answers appends after Close.
var errClosed = errors.New("store closed")

type auditReq struct {
	e   store.AuditEvent
	err chan error
}

// auditWriteTimeout bounds one batch's INSERT.
const auditWriteTimeout = 10 * time.Second

// maxAuditBatch bounds one INSERT (8 columns each).
const maxAuditBatch = 256

func newAuditBatcher(s *Store) *auditBatcher {
	return &auditBatcher{s: s, reqs: make(chan auditReq, maxAuditBatch), stop: make(chan struct{}), done: make(chan struct{})}
}

// start runs the writer on first use (a Store that never audits has no goroutine).
func (b *auditBatcher) start() { b.once.Do(func() { go b.loop() }) }

func (b *auditBatcher) append(ctx context.Context, e store.AuditEvent) error {
	b.start()
	r := auditReq{e: e, err: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-b.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the event is written whatever the caller does next; wait
	// for the outcome (the write itself is bounded by the database). A
	// request queued as the writer stopped after its last drain gets none.
	select {
	case err := <-r.err:
		return err
	case <-b.done:
		select {
		case err := <-r.err:
			return err
		default:
			return errClosed
		}
	}
}

func (b *auditBatcher) loop() {
	defer close(b.done)
	for {
		var batch []auditReq
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-b.stop:
			b.drain()
			return
		}
	more:
		for len(batch) < maxAuditBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		b.write(batch)
	}
}

// drain writes what was queued before stop.
func (b *auditBatcher) drain() {
	for {
		var batch []auditReq
		for len(batch) < maxAuditBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
				continue
			default:
			}
			break
		}
		if len(batch) == 0 {
			return
		}
		b.write(batch)
	}
}

// auditInsert, then "VALUES " and auditValues once per event (or a SELECT
// of them), with auditArgs, stores audit events: the batcher's, and the one
// SaveRefreshed writes with the refreshed credential.
const (
	auditInsert = `INSERT INTO audit_log (id, organization_id, actor, action, target_type, target_id, remote_addr, created_at) `
	auditValues = "(?, ?, ?, ?, ?, ?, ?, ?)"
)

func auditArgs(e store.AuditEvent) []any {
	return []any{e.ID, e.OrganizationID, e.Actor, e.Action, e.TargetType, e.TargetID, e.RemoteAddr, utc(e.CreatedAt)}
}

func (b *auditBatcher) write(batch []auditReq) {
	vals := make([]string, len(batch))
	args := make([]any, 0, 8*len(batch))
	for i, r := range batch {
		vals[i] = auditValues
		args = append(args, auditArgs(r.e)...)
	}
	// Bounded: a database that hangs instead of refusing must not hold
	// every audited request forever.
	ctx, cancel := context.WithTimeout(context.Background(), auditWriteTimeout)
	defer cancel()
	_, err := b.s.exec(ctx, b.s.w, auditInsert+"VALUES "+strings.Join(vals, ", "), args...)
	err = b.s.wrap(err, "append audit")
	for _, r := range batch {
		r.err <- err
	}
}

// close stops the loop after writing everything queued.
func (b *auditBatcher) close() {
	b.stopOnce.Do(func() {
		close(b.stop)
		started := true
		b.once.Do(func() { started = false })
		if started {
			<-b.done
		}
	})
}
