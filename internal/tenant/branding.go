package tenant

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/store"
)

// MaxLogoBytes bounds a data: URL logo (after decoding).
const MaxLogoBytes = 64 << 10

var accentPattern = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// logoTypes are the image types a data: URL logo may have.
var logoTypes = map[string]bool{"image/png": true, "image/svg+xml": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// checkBranding validates white-label settings: a display name of at most
// 100 characters, an accent colour #rrggbb, and a logo that is an https
// URL or a base64 data: URL of an image of at most 64 KiB. Each problem
// names its field under loc.
func checkBranding(b store.Branding, loc ...any) []apperr.FieldError {
	at := func(field string) []any { return append(append([]any{}, loc...), field) }
	var errs []apperr.FieldError
	if !utf8.ValidString(b.DisplayName) || utf8.RuneCountInString(b.DisplayName) > 100 || strings.ContainsAny(b.DisplayName, "\r\n") {
		errs = append(errs, apperr.Field("string_too_long", "display_name must be one line of at most 100 characters", at("display_name")...))
	}
	if b.AccentColor != "" && !accentPattern.MatchString(b.AccentColor) {
		errs = append(errs, apperr.Field("string_pattern_mismatch", "accent_color must be a hex colour like #0a7cff", at("accent_color")...))
	}
	if b.LogoURL != "" {
		if msg := checkLogo(b.LogoURL); msg != "" {
			errs = append(errs, apperr.Field("value_error", msg, at("logo_url")...))
		}
	}
	return errs
}

func checkLogo(logo string) string {
	if rest, ok := strings.CutPrefix(logo, "data:"); ok {
		typ, data, ok := strings.Cut(rest, ";base64,")
		if !ok || !logoTypes[typ] {
			return "logo_url data: URLs must be base64 images (png, svg+xml, jpeg, gif or webp)"
		}
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return "logo_url has invalid base64"
		}
		if len(raw) > MaxLogoBytes {
			return "logo_url images may be at most 64 KiB"
		}
		return ""
	}
	u, err := url.Parse(logo)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(logo) > 2048 || strings.ContainsAny(logo, "\"'<> \t\r\n") {
		return "logo_url must be an https URL or a data: image URL"
	}
	return ""
}

// SetBranding validates and stores an organization's white-label settings.
func (s *Service) SetBranding(ctx context.Context, orgID string, b store.Branding) (store.Branding, error) {
	b.DisplayName = strings.TrimSpace(b.DisplayName)
	b.AccentColor = strings.ToLower(b.AccentColor)
	if errs := checkBranding(b, "body"); len(errs) > 0 {
		return b, apperr.Invalid(errs...)
	}
	err := s.st.SetBranding(ctx, orgID, b)
	if errors.Is(err, store.ErrNotFound) {
		return b, apperr.NotFound("Organization '%s' not found", orgID)
	}
	return b, err
}
