// Package config reads havip-agent's TOML configuration.
//
// Load parses a file strictly: unknown keys, wrong types and invalid values
// are errors, and every error names the file, the line and the key, in the
// form "havip-agent.toml:14: instance[1].vips[0]: ...". Defaults are applied
// after parsing, so a Config returned without error is complete and every
// consumer can read its fields without further checks. What is valid but
// unwise (plain http to a cloud endpoint) is listed by Config.Warnings.
//
// SocketPath is the lenient counterpart for the client commands: it reads
// only agent.socket and ignores whatever else is wrong in the file.
//
// Both read only regular files of at most MaxFileSize.
package config
