// Package audit carries who is acting through a request's context and
// writes audit events: who did what to which credential, when and from
// where — never a value.
package audit

import (
	"context"
	"os"
	"os/user"
	"time"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/store"
)

// Actor is who acts: "api_key:<id>", "application:<id>", a workspace's end
// user, or "system:<part>" for background work.
type Actor struct {
	Name       string
	RemoteAddr string
}

type actorKey struct{}

// WithActor records the acting party in ctx.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the acting party, or a system actor named def.
func ActorFrom(ctx context.Context, def string) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok && a.Name != "" {
		return a
	}
	return Actor{Name: "system:" + def}
}

// Appender stores events.
type Appender interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) error
}

// Record appends one event about a source connection's credential.
func Record(ctx context.Context, st Appender, orgID, action, connectionID, def string) error {
	return Event(ctx, st, orgID, action, "source_connection", connectionID, def)
}

// Event appends one event about any target (a keyset, a signing key).
func Event(ctx context.Context, st Appender, orgID, action, targetType, targetID, def string) error {
	return st.AppendAudit(context.WithoutCancel(ctx), NewEvent(ctx, orgID, action, targetType, targetID, def))
}

// NewEvent is the event Event appends, for a store write that records it in
// its own transaction.
func NewEvent(ctx context.Context, orgID, action, targetType, targetID, def string) store.AuditEvent {
	a := ActorFrom(ctx, def)
	return store.AuditEvent{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: orgID,
		Actor: a.Name, Action: action, TargetType: targetType, TargetID: targetID, RemoteAddr: a.RemoteAddr,
		CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
}

// Operator is the actor of an operator command: the OS user and the host
// it ran on.
func Operator() Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return Actor{Name: "operator:" + name, RemoteAddr: host}
}
