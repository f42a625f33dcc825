// Package e2e holds tests that run whole valetkey processes: several
// replicas on one database, and crashes.
package e2e
