package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/valetkey/valetkey/internal/store"
)

const webhookCols = `id, organization_id, url, events, ciphertext, key_id, created_at`

func scanWebhook(sc scanner) (store.Webhook, error) {
	var w store.Webhook
	var events string
	var keyID int64
	err := sc.Scan(&w.ID, &w.OrganizationID, &w.URL, &events, &w.Ciphertext, &keyID, &w.CreatedAt)
	_ = json.Unmarshal([]byte(events), &w.Events)
	w.KeyID, w.CreatedAt = uint32(keyID), w.CreatedAt.UTC()
	return w, err
}

// CreateWebhook stores a subscription.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO webhooks (`+webhookCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.OrganizationID, w.URL, jsonList(w.Events), w.Ciphertext, int64(w.KeyID), utc(w.CreatedAt))
	return s.wrap(err, "webhook")
}

// GetWebhook finds a subscription.
func (s *Store) GetWebhook(ctx context.Context, orgID, id string) (store.Webhook, error) {
	w, err := scanWebhook(s.queryRow(ctx, s.db, `SELECT `+webhookCols+` FROM webhooks WHERE organization_id = ? AND id = ?`, orgID, id))
	return w, s.wrap(err, "webhook")
}

// ListWebhooks lists an organization's subscriptions.
func (s *Store) ListWebhooks(ctx context.Context, orgID string) ([]store.Webhook, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+webhookCols+` FROM webhooks WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	return collect(s, rows, err, "list webhooks", scanWebhook)
}

// DeleteWebhook removes a subscription and its delivery log.
func (s *Store) DeleteWebhook(ctx context.Context, orgID, id string) error {
	res, err := s.exec(ctx, s.w, `DELETE FROM webhooks WHERE organization_id = ? AND id = ?`, orgID, id)
	if err != nil {
		return s.wrap(err, "delete webhook")
	}
	return checkAffected(res, "webhook")
}

const deliveryCols = `id, organization_id, webhook_id, event, payload, status, attempts, last_status, last_error, created_at, updated_at`

func scanDelivery(sc scanner) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	err := sc.Scan(&d.ID, &d.OrganizationID, &d.WebhookID, &d.Event, &d.Payload, &d.Status, &d.Attempts, &d.LastStatus, &d.LastError, &d.CreatedAt, &d.UpdatedAt)
	d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
	return d, err
}

// CreateDelivery stores a delivery.
func (s *Store) CreateDelivery(ctx context.Context, d store.WebhookDelivery) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO webhook_deliveries (`+deliveryCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.OrganizationID, d.WebhookID, d.Event, d.Payload, d.Status, d.Attempts, d.LastStatus, d.LastError, utc(d.CreatedAt), utc(d.UpdatedAt))
	return s.wrap(err, "delivery")
}

// GetDelivery finds a delivery.
func (s *Store) GetDelivery(ctx context.Context, id string) (store.WebhookDelivery, error) {
	d, err := scanDelivery(s.queryRow(ctx, s.db, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE id = ?`, id))
	return d, s.wrap(err, "delivery")
}

// UpdateDelivery saves a delivery's outcome.
func (s *Store) UpdateDelivery(ctx context.Context, d store.WebhookDelivery) error {
	_, err := s.exec(ctx, s.w, `UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		d.Status, d.Attempts, d.LastStatus, d.LastError, utc(d.UpdatedAt), d.ID)
	return s.wrap(err, "update delivery")
}

// ListDeliveries lists a subscription's deliveries, newest first.
func (s *Store) ListDeliveries(ctx context.Context, orgID, webhookID string, limit int) ([]store.WebhookDelivery, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE organization_id = ? AND webhook_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, orgID, webhookID, limit)
	return collect(s, rows, err, "list deliveries", scanDelivery)
}
