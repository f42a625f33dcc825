package native

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/valetkey/valetkey/internal/api/shared"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/webhooks"
)

// Webhook is a subscription as clients see it; Secret only when created.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty" doc:"Shown once, at creation: verify webhook-signature with it"`
	CreatedAt time.Time `json:"created_at"`
}

// Delivery is one entry of a subscription's delivery log.
type Delivery struct {
	ID         string    `json:"id"`
	Event      string    `json:"event"`
	Status     string    `json:"status"`
	Attempts   int       `json:"attempts"`
	LastStatus int       `json:"last_status"`
	LastError  string    `json:"last_error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func hookOut(w store.Webhook) Webhook {
	return Webhook{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt}
}

// RegisterWebhooks adds the webhook routes.
func RegisterWebhooks(api huma.API, svc *webhooks.Service, h *Handlers) {
	shared.Register(api, h.log, op("create-webhook", http.MethodPost, "/webhooks", "Subscribe a URL to events (Standard Webhooks signatures)", "webhooks"),
		func(ctx context.Context, in *struct {
			Body struct {
				URL    string   `json:"url"`
				Events []string `json:"events"`
			}
		}) (*struct{ Body Webhook }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			w, secret, err := svc.Create(ctx, p.OrganizationID, in.Body.URL, in.Body.Events)
			if err != nil {
				return nil, err
			}
			out := hookOut(w)
			out.Secret = secret.Reveal()
			return &struct{ Body Webhook }{Body: out}, nil
		})
	shared.Register(api, h.log, op("list-webhooks", http.MethodGet, "/webhooks", "List webhook subscriptions", "webhooks"),
		func(ctx context.Context, _ *struct{}) (*struct{ Body []Webhook }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			list, err := svc.List(ctx, p.OrganizationID)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []Webhook }{Body: []Webhook{}}
			for _, w := range list {
				out.Body = append(out.Body, hookOut(w))
			}
			return out, nil
		})
	shared.Register(api, h.log, op("delete-webhook", http.MethodDelete, "/webhooks/{id}", "Unsubscribe", "webhooks"),
		func(ctx context.Context, in *struct {
			ID string `path:"id"`
		}) (*struct{}, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			return nil, svc.Delete(ctx, p.OrganizationID, in.ID)
		})
	shared.Register(api, h.log, op("list-webhook-deliveries", http.MethodGet, "/webhooks/{id}/deliveries", "A subscription's delivery log", "webhooks"),
		func(ctx context.Context, in *struct {
			ID    string `path:"id"`
			Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
		}) (*struct{ Body []Delivery }, error) {
			p, err := shared.Principal(ctx)
			if err != nil {
				return nil, err
			}
			list, err := svc.Deliveries(ctx, p.OrganizationID, in.ID, in.Limit)
			if err != nil {
				return nil, err
			}
			out := &struct{ Body []Delivery }{Body: []Delivery{}}
			for _, d := range list {
				out.Body = append(out.Body, Delivery{ID: d.ID, Event: d.Event, Status: d.Status, Attempts: d.Attempts, LastStatus: d.LastStatus,
					LastError: d.LastError, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt})
			}
			return out, nil
		})
}
