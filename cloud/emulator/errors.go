package emulator

import "fmt"

// apiError is an error answer of the API: an HTTP status and a BCE error code.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) *apiError {
	return errf(404, "NoSuchObject", "The %s %q does not exist.", kind, id)
}

func invalidParam(format string, args ...any) *apiError {
	return errf(400, "InvalidParameter", format, args...)
}
