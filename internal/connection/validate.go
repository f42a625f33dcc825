package connection

import (
	"fmt"
	"math"
	"sort"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/vault"
)

func appendLoc(loc []any, more ...any) []any {
	out := make([]any, 0, len(loc)+len(more))
	return append(append(out, loc...), more...)
}

// checkCredentials validates raw credential fields against one auth method.
// Values are never copied into messages.
func checkCredentials(src *catalog.Source, m catalog.AuthMethod, raw map[string]any, loc []any) (map[string]vault.Secret, []apperr.FieldError) {
	var errs []apperr.FieldError
	known := map[string]catalog.Field{}
	for _, f := range m.CredentialFields() {
		known[f.Name] = f
	}
	out := map[string]vault.Secret{}
	for _, name := range sortedKeys(raw) {
		f, ok := known[name]
		if !ok {
			if name == "refresh_token" && m.Type == catalog.AuthOAuth2 && m.OAuthType == catalog.OAuthAccessOnly {
				errs = append(errs, apperr.Field("value_error",
					fmt.Sprintf("Source '%s' uses access-only OAuth2 and does not accept a refresh token", src.ShortName), appendLoc(loc, name)...))
				continue
			}
			errs = append(errs, apperr.Field("extra_forbidden",
				fmt.Sprintf("Unknown field '%s' for %s authentication of source '%s'", name, m.Type, src.ShortName), appendLoc(loc, name)...))
			continue
		}
		s, isString := raw[name].(string)
		switch {
		case raw[name] == nil && f.Optional:
			continue
		case !isString:
			errs = append(errs, apperr.Field("string_type", fmt.Sprintf("Field '%s' must be a string", name), appendLoc(loc, name)...))
		case s == "":
			errs = append(errs, apperr.Field("string_too_short", fmt.Sprintf("Field '%s' must not be empty", name), appendLoc(loc, name)...))
		case f.Regexp() != nil && !f.Regexp().MatchString(s):
			errs = append(errs, apperr.Field("string_pattern_mismatch",
				fmt.Sprintf("Field '%s' does not match the expected format %s", name, f.Pattern), appendLoc(loc, name)...))
		default:
			out[name] = vault.NewSecret(s)
		}
	}
	for _, f := range m.CredentialFields() {
		if _, given := raw[f.Name]; !given && !f.Optional {
			errs = append(errs, apperr.Field("missing", fmt.Sprintf("Field '%s' is required", f.Name), appendLoc(loc, f.Name)...))
		}
	}
	return out, errs
}

// chooseMethod picks the auth method the given fields are meant for: the
// first that accepts them, else the one sharing the most field names, whose
// errors are reported.
func chooseMethod(src *catalog.Source, raw map[string]any, loc []any) (catalog.AuthMethod, map[string]vault.Secret, []apperr.FieldError) {
	bestScore := -1
	var best catalog.AuthMethod
	var bestErrs []apperr.FieldError
	for _, m := range src.Auth {
		fields, errs := checkCredentials(src, m, raw, loc)
		if len(errs) == 0 {
			return m, fields, nil
		}
		score := 0
		for _, f := range m.CredentialFields() {
			if _, ok := raw[f.Name]; ok {
				score++
			}
		}
		if m.Type == catalog.AuthOAuth2 {
			if _, ok := raw["refresh_token"]; ok {
				score++
			}
		}
		if score > bestScore {
			bestScore, best, bestErrs = score, m, errs
		}
	}
	return best, nil, bestErrs
}

// checkConfig validates config values against the source's config fields and
// fills defaults. partial skips the required check (for updates that merge).
func checkConfig(src *catalog.Source, raw map[string]any, loc []any, partial bool) (map[string]any, []apperr.FieldError) {
	var errs []apperr.FieldError
	known := map[string]catalog.ConfigField{}
	for _, f := range src.ConfigFields {
		known[f.Name] = f
	}
	out := map[string]any{}
	for _, name := range sortedKeys(raw) {
		f, ok := known[name]
		if !ok {
			errs = append(errs, apperr.Field("extra_forbidden", fmt.Sprintf("Unknown config field '%s' for source '%s'", name, src.ShortName), appendLoc(loc, name)...))
			continue
		}
		v := raw[name]
		if msg := typeMismatch(f, v); msg != "" {
			errs = append(errs, apperr.Field(f.Type+"_type", fmt.Sprintf("Config field '%s' %s", name, msg), appendLoc(loc, name)...))
			continue
		}
		if s, ok := v.(string); ok && f.Regexp() != nil && !f.Regexp().MatchString(s) {
			errs = append(errs, apperr.Field("string_pattern_mismatch", fmt.Sprintf("Config field '%s' must match %s", name, f.Pattern), appendLoc(loc, name)...))
			continue
		}
		out[name] = v
	}
	if !partial {
		for _, f := range src.ConfigFields {
			if _, ok := out[f.Name]; ok {
				continue
			}
			if _, given := raw[f.Name]; given {
				continue
			}
			if f.Default != nil {
				out[f.Name] = f.Default
			} else if f.Required {
				errs = append(errs, apperr.Field("missing", fmt.Sprintf("Config field '%s' is required", f.Name), appendLoc(loc, f.Name)...))
			}
		}
	}
	return out, errs
}

func typeMismatch(f catalog.ConfigField, v any) string {
	switch f.Type {
	case "string":
		if s, ok := v.(string); !ok {
			return "must be a string"
		} else if s == "" && f.Required {
			return "must not be empty"
		}
	case "integer":
		n, ok := v.(float64)
		if !ok || n != math.Trunc(n) {
			return "must be an integer"
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return "must be a number"
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return "must be a boolean"
		}
	case "array":
		if _, ok := v.([]any); !ok {
			return "must be an array"
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
