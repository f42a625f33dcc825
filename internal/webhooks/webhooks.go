// Package webhooks keeps organizations' webhook subscriptions and delivers
// events to them through the job queue, signed per the Standard Webhooks
// convention (webhook-id, webhook-timestamp, webhook-signature = HMAC-SHA256
// with the subscription's secret), retried with backoff, with a delivery
// log. No payload carries a secret.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Events a subscription can ask for.
var Events = []string{"source_connection.created", "source_connection.needs_reauth", "sync.completed", "sync.failed"}

// MaxAttempts spreads retries over about a day with River's backoff.
const MaxAttempts = 13

// Store is what the service needs from storage.
type Store interface {
	CreateWebhook(ctx context.Context, w store.Webhook) error
	GetWebhook(ctx context.Context, orgID, id string) (store.Webhook, error)
	ListWebhooks(ctx context.Context, orgID string) ([]store.Webhook, error)
	DeleteWebhook(ctx context.Context, orgID, id string) error
	CreateDelivery(ctx context.Context, d store.WebhookDelivery) error
	GetDelivery(ctx context.Context, id string) (store.WebhookDelivery, error)
	UpdateDelivery(ctx context.Context, d store.WebhookDelivery) error
	ListDeliveries(ctx context.Context, orgID, webhookID string, limit int) ([]store.WebhookDelivery, error)
}

// Inserter enqueues jobs.
type Inserter interface {
	Insert(ctx context.Context, a river.JobArgs, o *river.InsertOpts) error
}

// Service manages subscriptions and deliveries.
type Service struct {
	// Attempts counts delivery attempts by outcome (for metrics).
	Delivered, FailedAttempts atomic.Int64

	st     Store
	sealer credential.Sealer
	q      Inserter
	hc     *http.Client
	log    *slog.Logger
	now    func() time.Time
	// allowPrivate lets subscriptions name internal addresses.
	allowPrivate bool
}

// New returns a Service; attach the queue with SetQueue. Unless
// allowPrivate, deliveries refuse to connect to loopback, private,
// link-local and unspecified addresses (whatever the URL's host resolves
// to), so a subscription cannot aim Valetkey at its own network.
func New(st Store, c credential.Cipher, log *slog.Logger, allowPrivate bool) *Service {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !allowPrivate {
		dialer.Control = refusePrivate
	}
	tr := &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}
	hc := &http.Client{Timeout: 15 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Service{st: st, sealer: credential.Sealer{C: c}, log: log, now: time.Now, hc: hc, allowPrivate: allowPrivate}
}

// errPrivateTarget refuses a connection to an internal address.
var errPrivateTarget = errors.New("target address is not public")

func refusePrivate(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || internalIP(ip) {
		return errPrivateTarget
	}
	return nil
}

func internalIP(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast()
}

// internalHost reports a URL host that names an internal address outright
// (an IP literal or localhost); names that resolve to one are refused when
// a delivery connects.
func internalHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && internalIP(ip)
}

// SetQueue attaches the queue deliveries go through.
func (s *Service) SetQueue(q Inserter) { s.q = q }

// DeliverArgs is a queued delivery; it names the delivery row only.
type DeliverArgs struct {
	DeliveryID string `json:"delivery_id"`
}

// Kind names the River job kind.
func (DeliverArgs) Kind() string { return "valetkey_webhook" }

type worker struct {
	river.WorkerDefaults[DeliverArgs]
	s *Service
}

func (w *worker) Work(ctx context.Context, j *river.Job[DeliverArgs]) error {
	return w.s.deliver(ctx, j.Args.DeliveryID, j.Attempt, j.MaxAttempts)
}

// Register adds the delivery worker to River's workers.
func (s *Service) Register(w *river.Workers) { river.AddWorker(w, &worker{s: s}) }

func (s *Service) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Create subscribes a URL to events; the secret is returned once.
func (s *Service) Create(ctx context.Context, orgID, rawURL string, events []string) (store.Webhook, vault.Secret, error) {
	var errs []apperr.FieldError
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		errs = append(errs, apperr.Field("url_parsing", "Field 'url' must be an absolute http(s) URL without credentials", "body", "url"))
	} else if !s.allowPrivate && internalHost(u.Hostname()) {
		errs = append(errs, apperr.Field("value_error", "Field 'url' names a loopback, private or link-local address (VALETKEY_ALLOW_PRIVATE_TARGETS allows it)", "body", "url"))
	}
	if len(events) == 0 {
		errs = append(errs, apperr.Field("missing", "Field 'events' needs at least one event", "body", "events"))
	}
	for i, e := range events {
		if !known(e) {
			errs = append(errs, apperr.Field("enum", "Unknown event; one of "+strings.Join(Events, ", "), "body", "events", i))
		}
	}
	if len(errs) > 0 {
		return store.Webhook{}, vault.Secret{}, apperr.Invalid(errs...)
	}
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	secret := vault.NewSecret("whsec_" + base64.StdEncoding.EncodeToString(raw))
	w := store.Webhook{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: orgID, URL: rawURL, Events: events, CreatedAt: s.nowUTC()}
	if w.Ciphertext, w.KeyID, err = s.sealer.SealAD(credential.ADFor(store.TableWebhooks, orgID, w.ID),
		credential.Payload{Fields: map[string]vault.Secret{"secret": secret}}); err != nil {
		return w, vault.Secret{}, err
	}
	return w, secret, s.st.CreateWebhook(ctx, w)
}

func known(e string) bool {
	for _, k := range Events {
		if k == e {
			return true
		}
	}
	return false
}

// List returns the organization's subscriptions.
func (s *Service) List(ctx context.Context, orgID string) ([]store.Webhook, error) {
	return s.st.ListWebhooks(ctx, orgID)
}

// Delete removes a subscription.
func (s *Service) Delete(ctx context.Context, orgID, id string) error {
	err := s.st.DeleteWebhook(ctx, orgID, id)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("Webhook '%s' not found", id)
	}
	return err
}

// Deliveries returns a subscription's delivery log.
func (s *Service) Deliveries(ctx context.Context, orgID, id string, limit int) ([]store.WebhookDelivery, error) {
	if _, err := s.st.GetWebhook(ctx, orgID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.NotFound("Webhook '%s' not found", id)
		}
		return nil, err
	}
	return s.st.ListDeliveries(ctx, orgID, id, limit)
}

// Emit records an event for every subscription that wants it and queues
// its delivery. Failures are logged; an event never fails its cause.
func (s *Service) Emit(ctx context.Context, orgID, event string, data map[string]any) {
	hooks, err := s.st.ListWebhooks(ctx, orgID)
	if err != nil {
		s.log.WarnContext(ctx, "webhooks: list failed", "error", err.Error())
		return
	}
	for _, h := range hooks {
		if !wants(h, event) {
			continue
		}
		payload, _ := json.Marshal(map[string]any{"type": event, "timestamp": s.nowUTC().Format(time.RFC3339Nano), "data": data})
		d := store.WebhookDelivery{ID: "msg_" + strings.ReplaceAll(uuid.NewString(), "-", ""), OrganizationID: orgID, WebhookID: h.ID, Event: event,
			Payload: string(payload), Status: "pending", CreatedAt: s.nowUTC(), UpdatedAt: s.nowUTC()}
		if err := s.st.CreateDelivery(ctx, d); err != nil {
			s.log.WarnContext(ctx, "webhooks: record delivery failed", "error", err.Error())
			continue
		}
		if s.q == nil {
			continue
		}
		if err := s.q.Insert(ctx, DeliverArgs{DeliveryID: d.ID}, &river.InsertOpts{MaxAttempts: MaxAttempts}); err != nil {
			s.log.WarnContext(ctx, "webhooks: enqueue failed", "error", err.Error())
		}
	}
}

func wants(h store.Webhook, event string) bool {
	for _, e := range h.Events {
		if e == event {
			return true
		}
	}
	return false
}

// Sign computes the Standard Webhooks signature header value.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", msgID, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// deliver sends one delivery; an error makes River retry it later.
func (s *Service) deliver(ctx context.Context, id string, attempt, maxAttempts int) error {
	d, err := s.st.GetDelivery(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	h, err := s.st.GetWebhook(ctx, d.OrganizationID, d.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // unsubscribed meanwhile
	} else if err != nil {
		return err
	}
	p, err := s.sealer.OpenAD(h.Ciphertext, credential.ADFor(store.TableWebhooks, h.OrganizationID, h.ID))
	if err != nil {
		return err
	}
	ts := s.now()
	sig, err := Sign(p.Fields["secret"].Reveal(), d.ID, ts, []byte(d.Payload))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader([]byte(d.Payload)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.hc.Do(req)
	d.Attempts, d.UpdatedAt = d.Attempts+1, s.nowUTC()
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		d.LastStatus = resp.StatusCode
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			d.Status, d.LastError = "delivered", ""
			s.Delivered.Add(1)
			return s.st.UpdateDelivery(ctx, d)
		}
		d.LastError = fmt.Sprintf("HTTP %d", resp.StatusCode)
	} else if errors.Is(err, errPrivateTarget) {
		d.LastStatus, d.LastError = 0, "refused: the URL resolves to a non-public address"
	} else {
		d.LastStatus, d.LastError = 0, "request failed"
	}
	s.FailedAttempts.Add(1)
	if attempt >= maxAttempts {
		d.Status = "failed"
	}
	if uerr := s.st.UpdateDelivery(ctx, d); uerr != nil {
		return uerr
	}
	return fmt.Errorf("webhook delivery %s: %s", d.ID, d.LastError)
}
