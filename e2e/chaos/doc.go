// Package chaos holds the figures of the chaos scenarios (issue 7): one
// Result per scenario, rendered as the Markdown table `make chaos` prints
// and saved with its JSON beside it.
package chaos
