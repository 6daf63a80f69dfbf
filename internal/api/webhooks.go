package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/webhook"
)

// Webhooks is the webhook registry; *webhook.Registry implements it.
type Webhooks interface {
	Create(ctx context.Context, in webhook.Input) (webhook.Webhook, string, error)
	Get(ctx context.Context, id string) (webhook.Webhook, error)
	List(ctx context.Context) ([]webhook.Webhook, error)
	Update(ctx context.Context, id string, p webhook.Patch) (webhook.Webhook, string, error)
	Delete(ctx context.Context, id string) error
	RotateSecret(ctx context.Context, id string) (webhook.Webhook, string, error)
	Attempts(ctx context.Context, id, cursor string, limit int) ([]webhook.Attempt, string, error)
}

// WebhookTester sends a webhook its test event; *webhook.Notifier implements it.
type WebhookTester interface {
	Test(ctx context.Context, id string) (webhook.Attempt, error)
}

// errNoWebhooks answers the webhook routes on a deployment built without a registry.
var errNoWebhooks = fault.New(fault.Unavailable, "", "webhooks are not configured on this deployment")

// Pages of the delivery log.
const (
	defaultDeliveryLimit = 50
	maxDeliveryLimit     = 200
)

// routeWebhooks registers the webhook routes: admins on every site only, since a webhook
// receives the events of every site.
func (s *Server) routeWebhooks() {
	s.globalRoute("GET /v1/webhooks", auth.Admin, s.listWebhooks)
	s.globalRoute("POST /v1/webhooks", auth.Admin, s.createWebhook)
	s.globalRoute("GET /v1/webhooks/{id}", auth.Admin, s.getWebhook)
	s.globalRoute("PATCH /v1/webhooks/{id}", auth.Admin, s.updateWebhook)
	s.globalRoute("DELETE /v1/webhooks/{id}", auth.Admin, s.deleteWebhook)
	s.globalRoute("POST /v1/webhooks/{id}/rotate-secret", auth.Admin, s.rotateWebhookSecret)
	s.globalRoute("POST /v1/webhooks/{id}/test", auth.Admin, s.testWebhook)
	s.globalRoute("GET /v1/webhooks/{id}/deliveries", auth.Admin, s.webhookDeliveries)
}

func webhookToWire(h webhook.Webhook) apiwire.Webhook {
	out := apiwire.Webhook{
		ID: h.ID, Name: h.Name, Endpoint: h.Endpoint, Events: h.Events, Format: string(h.Format), Enabled: h.Enabled,
		DisabledReason: h.DisabledReason, AllowPrivateCIDRs: h.AllowPrivateCIDRs, FailedDeliveries: h.FailedDeliveries,
		Version: h.Version, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt,
	}
	if out.Events == nil {
		out.Events = []string{}
	}
	if out.AllowPrivateCIDRs == nil {
		out.AllowPrivateCIDRs = []string{}
	}
	return out
}

func attemptToWire(a webhook.Attempt) apiwire.WebhookDelivery {
	return apiwire.WebhookDelivery{
		ID: a.ID, DeliveryID: a.DeliveryID, EventID: a.EventID, DetailType: a.DetailType, Attempt: a.Attempt, StatusCode: a.StatusCode,
		Error: a.Error, Outcome: string(a.Outcome), DurationMS: a.Duration.Milliseconds(), At: a.At, NextAttemptAt: a.NextAttemptAt,
	}
}

// webhookID reads and checks the path's webhook id; the error is the answer, for the audit entry
// too.
func (s *Server) webhookID(r *http.Request) (string, error) {
	if s.opts.Webhooks == nil {
		return "", errNoWebhooks
	}
	return pathRecordID(r, "webhook")
}

// answerWebhook writes h with its ETag (and secret, when one was made), or err.
func (s *Server) answerWebhook(w http.ResponseWriter, r *http.Request, status int, h webhook.Webhook, secret string, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var body any = webhookToWire(h)
	if secret != "" {
		body = apiwire.WebhookCreated{Webhook: webhookToWire(h), SigningSecret: secret}
	}
	writeRecord(w, status, "/v1/webhooks/"+h.ID, h.Version, body)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	if s.opts.Webhooks == nil {
		s.fail(w, r, errNoWebhooks)
		return
	}
	if hs, ok := listRecords(s, w, r, s.opts.Webhooks.List, webhookToWire); ok {
		WriteJSON(w, http.StatusOK, apiwire.WebhookList{Items: hs})
	}
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	id, err := s.webhookID(r)
	var h webhook.Webhook
	if err == nil {
		h, err = s.opts.Webhooks.Get(r.Context(), id)
	}
	s.answerWebhook(w, r, http.StatusOK, h, "", err)
}

// webhookDetail is what a webhook's audit entry says: never the URL, only its endpoint.
func webhookDetail(h webhook.Webhook) map[string]string {
	if h.ID == "" {
		return nil
	}
	return map[string]string{"name": h.Name, "endpoint": h.Endpoint}
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var in apiwire.WebhookInput
	var h webhook.Webhook
	var secret string
	err := func() error {
		if s.opts.Webhooks == nil {
			return errNoWebhooks
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		var err error
		h, secret, err = s.opts.Webhooks.Create(r.Context(), webhook.Input{
			Name: in.Name, URL: in.URL, Events: in.Events, Format: webhook.Format(in.Format), Enabled: in.Enabled, AllowPrivateCIDRs: in.AllowPrivateCIDRs,
		})
		return err
	}()
	s.record(r, caller, "webhook.create", h.ID, err, webhookDetail(h))
	s.answerWebhook(w, r, http.StatusCreated, h, secret, err)
}

// updateWebhook changes a webhook; with rotate_secret (which a new URL needs) the answer has its
// new signing secret, shown this once.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var wp apiwire.WebhookPatch
	var h webhook.Webhook
	var secret string
	err := func() error {
		id, err := s.webhookID(r)
		if err != nil {
			return err
		}
		if err := decodeBody(r, &wp); err != nil {
			return err
		}
		pa := webhook.Patch{Name: wp.Name, URL: wp.URL, Events: wp.Events, Enabled: wp.Enabled, AllowPrivateCIDRs: wp.AllowPrivateCIDRs, Version: wp.Version,
			RotateSecret: wp.RotateSecret != nil && *wp.RotateSecret}
		if wp.Format != nil {
			f := webhook.Format(*wp.Format)
			pa.Format = &f
		}
		if pa.Version, err = patchBase(r, pa.Version, "webhook"); err != nil {
			return err
		}
		h, secret, err = s.opts.Webhooks.Update(r.Context(), id, pa)
		return err
	}()
	s.record(r, caller, "webhook.update", r.PathValue("id"), err, patchFields(wp))
	s.answerWebhook(w, r, http.StatusOK, h, secret, err)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, err := s.webhookID(r)
	if err == nil {
		err = s.opts.Webhooks.Delete(r.Context(), id)
	}
	s.record(r, caller, "webhook.delete", r.PathValue("id"), err, nil)
	s.answerWebhook(w, r, http.StatusNoContent, webhook.Webhook{}, "", err)
}

// rotateWebhookSecret gives a webhook a new signing secret, shown in this answer only.
func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, err := s.webhookID(r)
	var h webhook.Webhook
	var secret string
	if err == nil {
		h, secret, err = s.opts.Webhooks.RotateSecret(r.Context(), id)
	}
	s.record(r, caller, "webhook.rotate_secret", r.PathValue("id"), err, nil)
	s.answerWebhook(w, r, http.StatusOK, h, secret, err)
}

// testWebhook sends the webhook a test event now and answers with the attempt, as the delivery
// log records it: a receiver's failure is a 200 whose outcome is failed.
func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var a webhook.Attempt
	err := func() error {
		id, err := s.webhookID(r)
		if err != nil {
			return err
		}
		if s.opts.WebhookTester == nil {
			return errNoWebhooks
		}
		a, err = s.opts.WebhookTester.Test(r.Context(), id)
		return err
	}()
	var detail map[string]string
	if err == nil {
		detail = map[string]string{"outcome": string(a.Outcome), "status_code": strconv.Itoa(a.StatusCode)}
	}
	s.record(r, caller, "webhook.test", r.PathValue("id"), err, detail)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, attemptToWire(a))
}

// webhookDeliveries answers GET /v1/webhooks/{id}/deliveries: the delivery log, newest first, a
// page of limit at a time.
func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	id, err := s.webhookID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for k, vs := range r.URL.Query() {
		if k != "limit" && k != "cursor" {
			WriteError(w, http.StatusBadRequest, &Error{Code: "unknown_parameter", Field: k, Message: "is not a known query parameter (limit, cursor)"})
			return
		}
		if len(vs) > 1 {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: k, Message: "may be given once"})
			return
		}
	}
	limit, ok := s.limitParam(w, r, defaultDeliveryLimit, maxDeliveryLimit)
	if !ok {
		return
	}
	as, next, err := s.opts.Webhooks.Attempts(r.Context(), id, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, apiwire.WebhookDeliveryList{Items: listed(as, attemptToWire), Next: next})
}
