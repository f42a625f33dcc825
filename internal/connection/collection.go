package connection

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/store"
)

var readableIDRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// slugify turns a name into lowercase words joined by hyphens.
func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 40 {
		s = strings.Trim(s[:40], "-")
	}
	if s == "" {
		s = "collection"
	}
	return s
}

// CreateCollection creates a collection; an empty readableID is generated
// from the name with a random suffix.
func (s *Service) CreateCollection(ctx context.Context, orgID, name, readableID string) (store.Collection, error) {
	name = strings.TrimSpace(name)
	var errs []apperr.FieldError
	if name == "" {
		errs = append(errs, apperr.Field("missing", "Field 'name' is required", "body", "name"))
	} else if len(name) > 64 {
		errs = append(errs, apperr.Field("string_too_long", "Field 'name' must have at most 64 characters", "body", "name"))
	}
	generated := readableID == ""
	if generated {
		readableID = slugify(name) + "-" + randomSuffix(6)
	} else if len(readableID) < 3 || len(readableID) > 63 || !readableIDRE.MatchString(readableID) {
		errs = append(errs, apperr.Field("string_pattern_mismatch",
			"Field 'readable_id' must be 3-63 lowercase letters, digits and single hyphens", "body", "readable_id"))
	}
	if len(errs) > 0 {
		return store.Collection{}, apperr.Invalid(errs...)
	}
	now := s.now().UTC()
	for attempt := 0; ; attempt++ {
		c := store.Collection{ID: newID(), OrganizationID: orgID, Name: name, ReadableID: readableID, CreatedAt: now, ModifiedAt: now}
		err := s.st.CreateCollection(ctx, c)
		if errors.Is(err, store.ErrAlreadyExists) {
			if generated && attempt < 3 {
				readableID = slugify(name) + "-" + randomSuffix(6)
				continue
			}
			return c, apperr.Conflict("Collection with readable_id '%s' already exists", readableID)
		}
		return c, err
	}
}

// GetCollection finds a collection by readable id.
func (s *Service) GetCollection(ctx context.Context, orgID, readableID string) (store.Collection, error) {
	c, err := s.st.GetCollection(ctx, orgID, readableID)
	if errors.Is(err, store.ErrNotFound) {
		return c, apperr.NotFound("Collection '%s' not found", readableID)
	}
	return c, err
}

// ListCollections pages through collections.
func (s *Service) ListCollections(ctx context.Context, orgID string, skip, limit int) ([]store.Collection, error) {
	return s.st.ListCollections(ctx, orgID, skip, limit)
}

// HasConnections reports whether a collection has at least one connection.
func (s *Service) HasConnections(ctx context.Context, c store.Collection) (bool, error) {
	list, err := s.st.ListConnections(ctx, c.OrganizationID, store.ConnectionFilter{CollectionID: c.ID, Limit: 1})
	return len(list) > 0, err
}

// DeleteCollection removes a collection with its connections and their
// credentials, and returns what was deleted.
func (s *Service) DeleteCollection(ctx context.Context, orgID, readableID string) (store.Collection, error) {
	c, err := s.GetCollection(ctx, orgID, readableID)
	if err != nil {
		return c, err
	}
	if err := s.st.DeleteCollection(ctx, orgID, c.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return c, apperr.NotFound("Collection '%s' not found", readableID)
		}
		return c, err
	}
	return c, nil
}

// CheckCollection answers a validation error at loc when the organization
// has no collection with this readable id.
func (s *Service) CheckCollection(ctx context.Context, orgID, readableID string, loc ...any) error {
	_, err := s.st.GetCollection(ctx, orgID, readableID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.Invalid(apperr.Field("value_error", fmt.Sprintf("Collection '%s' not found", readableID), loc...))
	}
	return err
}

// CheckSource answers a validation error at loc when the catalog has no
// source with this short name.
func (s *Service) CheckSource(shortName string, loc ...any) error {
	if _, err := s.catalog.Get(shortName); err != nil {
		return apperr.Invalid(apperr.Field("value_error", fmt.Sprintf("Source '%s' not found", shortName), loc...))
	}
	return nil
}
