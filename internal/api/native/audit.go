package native

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/store"
)

// AuditReader reads the audit log.
type AuditReader interface {
	ListAudit(ctx context.Context, orgID string, f store.AuditFilter) ([]store.AuditEvent, error)
}

// AuditEvent is an audit log entry: never a value.
type AuditEvent struct {
	ID         string    `json:"id"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action" doc:"credential.read, credential.create, credential.replace, credential.refresh, credential.delete; operator commands: keyset.rotate, keyset.prune, signing_key.rotate"`
	TargetType string    `json:"target_type"`
	TargetID   string    `json:"target_id"`
	RemoteAddr string    `json:"remote_addr"`
	CreatedAt  time.Time `json:"created_at"`
}

// RegisterAudit adds GET /audit.
func RegisterAudit(api huma.API, r AuditReader, h *Handlers) {
	shared.Register(api, h.log, op("list-audit", http.MethodGet, "/audit", "The organization's credential audit log, newest first", "audit"),
		func(ctx context.Context, in *struct {
			Action   string    `query:"action"`
			TargetID string    `query:"target_id"`
			Actor    string    `query:"actor"`
			Since    time.Time `query:"since" doc:"RFC 3339"`
			Limit    int       `query:"limit" minimum:"1" maximum:"1000" default:"100"`
		}) (*struct{ Body []AuditEvent }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			list, err := r.ListAudit(ctx, p.OrganizationID, store.AuditFilter{Action: in.Action, TargetID: in.TargetID, Actor: in.Actor, Since: in.Since, Limit: in.Limit})
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []AuditEvent }{Body: []AuditEvent{}}
			for _, e := range list {
				out.Body = append(out.Body, AuditEvent{ID: e.ID, Actor: e.Actor, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID,
					RemoteAddr: e.RemoteAddr, CreatedAt: e.CreatedAt})
			}
			return out, nil
		})
}
