package vault

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints as.
const Redacted = "[REDACTED]"

// Secret holds a value that grants access. Every way of printing, logging or
// encoding it yields Redacted; only Reveal returns the value.
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the value, for encryption or for sending it upstream.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String redacts.
func (s Secret) String() string { return Redacted }

// GoString redacts.
func (s Secret) GoString() string { return Redacted }

// LogValue redacts.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText redacts.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Format redacts for every verb, including %v, %+v, %#v, %s, %q and %x.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", Redacted)
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// UnmarshalJSON accepts a JSON string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := jsonUnmarshal(b, &v); err != nil {
		return fmt.Errorf("secret must be a string")
	}
	s.v = v
	return nil
}
