package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/store"
)

// CreateTemplate stores a source template: a connector with defaults that
// end users' configurations are merged over. Defaults must name fields the
// connector knows (its credential or config fields).
func (s *Service) CreateTemplate(ctx context.Context, orgID, name, shortName string, defaults map[string]any) (store.SourceTemplate, error) {
	src, err := s.Source(strings.ToLower(strings.TrimSpace(shortName)))
	if err != nil {
		return store.SourceTemplate{}, err
	}
	known := knownFields(src)
	var errs []apperr.FieldError
	if strings.TrimSpace(name) == "" {
		errs = append(errs, apperr.Field("missing", "Field 'name' is required", "body", "name"))
	}
	for k := range defaults {
		if !known[k] {
			errs = append(errs, apperr.Field("extra_forbidden", fmt.Sprintf("Unknown field '%s' for connector '%s'", k, src.ShortName), "body", "partial_default_config", k))
		}
	}
	if len(errs) > 0 {
		return store.SourceTemplate{}, apperr.Invalid(errs...)
	}
	cfg, _ := json.Marshal(defaults)
	now := s.now()
	t := store.SourceTemplate{ID: newID(), OrganizationID: orgID, Name: strings.TrimSpace(name), ShortName: src.ShortName, PartialDefaultConfig: cfg,
		CreatedAt: now, UpdatedAt: now}
	return t, s.st.CreateSourceTemplate(ctx, t)
}

// knownFields are a source's credential and config field names.
func knownFields(src *catalog.Source) map[string]bool {
	out := map[string]bool{}
	for _, m := range src.Auth {
		for _, f := range m.CredentialFields() {
			out[f.Name] = true
		}
	}
	for _, f := range src.ConfigFields {
		out[f.Name] = true
	}
	return out
}

// GetTemplate finds a template.
func (s *Service) GetTemplate(ctx context.Context, orgID, id string) (store.SourceTemplate, error) {
	t, err := s.st.GetSourceTemplate(ctx, orgID, id)
	if errors.Is(err, store.ErrNotFound) {
		return t, apperr.NotFound("Source template '%s' not found", id)
	}
	return t, err
}

// ListTemplates lists the organization's templates.
func (s *Service) ListTemplates(ctx context.Context, orgID string) ([]store.SourceTemplate, error) {
	return s.st.ListSourceTemplates(ctx, orgID)
}

// DeleteTemplate removes a template.
func (s *Service) DeleteTemplate(ctx context.Context, orgID, id string) error {
	err := s.st.DeleteSourceTemplate(ctx, orgID, id)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.NotFound("Source template '%s' not found", id)
	}
	return err
}

// CreateFromTemplate creates a workspace's connection from a template: the
// template's defaults merged under the given configuration, split into
// credentials and config and checked as any connection is (each missing
// required field not defaulted is named in the 422).
func (s *Service) CreateFromTemplate(ctx context.Context, orgID, workspaceID, templateID, name string, configuration map[string]any) (View, error) {
	t, err := s.GetTemplate(ctx, orgID, templateID)
	if err != nil {
		return View{}, err
	}
	src, err := s.Source(t.ShortName)
	if err != nil {
		return View{}, err
	}
	var merged map[string]any
	_ = json.Unmarshal(t.PartialDefaultConfig, &merged)
	if merged == nil { // a template stored without defaults holds JSON null
		merged = map[string]any{}
	}
	for k, v := range configuration {
		merged[k] = v
	}
	creds, config := map[string]any{}, map[string]any{}
	configNames := map[string]bool{}
	for _, f := range src.ConfigFields {
		configNames[f.Name] = true
	}
	for k, v := range merged {
		if !configNames[k] {
			creds[k] = v
		} else {
			config[k] = v
		}
	}
	if name == "" {
		name = t.Name
	}
	if len([]rune(name)) < 4 {
		name += " connection"
	}
	loc := []any{"body", "connection_configuration"}
	return s.Create(ctx, orgID, CreateInput{Name: name, ShortName: src.ShortName, Config: config, ConfigLoc: loc,
		Credentials: &Credentials{Raw: creds, Loc: loc}, WorkspaceID: workspaceID})
}
