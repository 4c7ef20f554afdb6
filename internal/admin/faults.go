package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/concord-db/concord/internal/faults"
)

// maxFaultBody bounds the JSON body of POST /v1/faults.
const maxFaultBody = 64 << 10

// errFaultsDisabled answers every /v1/faults request on a member started
// without fault injection.
var errFaultsDisabled = errors.New("admin: fault injection is disabled on this member (start it with --fault-injection)")

// FaultList is the body of GET /v1/faults.
type FaultList struct {
	Faults []faults.Info `json:"faults"`
}

// FaultsRemoved is the body of DELETE /v1/faults.
type FaultsRemoved struct {
	Removed []faults.Info `json:"removed"`
}

// KillResult is the body of POST /v1/faults for a kill rule: the rule in
// canonical form and whether this member is the one killed. A member
// answers 202 Accepted and then exits with faults.KillExitStatus when it
// is; 200 with Killed false when the rule names another member (nothing
// happens: send the canonical rule to that member).
type KillResult struct {
	faults.Info
	Killed bool `json:"killed"`
}

// Crasher is the optional interface of a Member that kill rules can crash;
// *server.Server implements it. FaultCrash reports whether member is this
// member and, if so, returns crash, which ends the process and does not
// return.
type Crasher interface {
	FaultCrash(member uint64) (crash func(), self bool)
}

// errKillUnsupported answers a kill rule on a member that cannot crash.
var errKillUnsupported = errors.New("admin: this member cannot be killed through the fault API")

// APIError is the body of every error answer of the fault API.
type APIError struct {
	Error string `json:"error"`
}

func (h *Handler) registerFaults() {
	h.mux.HandleFunc("GET /v1/faults", h.listFaults)
	h.mux.HandleFunc("POST /v1/faults", h.installFault)
	h.mux.HandleFunc("DELETE /v1/faults", h.healFaults)
	h.mux.HandleFunc("DELETE /v1/faults/{id}", h.removeFault)
}

// plane returns the fault plane, or answers 403 and returns nil.
func (h *Handler) plane(w http.ResponseWriter) *faults.Plane {
	if h.faults == nil {
		writeFaultJSON(w, http.StatusForbidden, APIError{errFaultsDisabled.Error()})
	}
	return h.faults
}

func (h *Handler) listFaults(w http.ResponseWriter, _ *http.Request) {
	p := h.plane(w)
	if p == nil {
		return
	}
	writeFaultJSON(w, http.StatusOK, FaultList{Faults: p.List()})
}

func (h *Handler) installFault(w http.ResponseWriter, r *http.Request) {
	p := h.plane(w)
	if p == nil {
		return
	}
	spec, err := decodeSpec(http.MaxBytesReader(w, r.Body, maxFaultBody))
	if err != nil {
		writeFaultJSON(w, http.StatusBadRequest, APIError{err.Error()})
		return
	}
	if spec.Kind == faults.KindKill {
		h.killMember(w, r, p, spec)
		return
	}
	info, err := p.Install(spec)
	if err != nil {
		writeFaultJSON(w, faultStatus(err), APIError{err.Error()})
		return
	}
	h.logger.Info("fault API: rule installed", "id", info.ID, "remote", r.RemoteAddr)
	w.Header().Set("Location", "/v1/faults/"+info.ID)
	writeFaultJSON(w, http.StatusCreated, info)
}

func (h *Handler) removeFault(w http.ResponseWriter, r *http.Request) {
	p := h.plane(w)
	if p == nil {
		return
	}
	info, err := p.Remove(r.PathValue("id"))
	if err != nil {
		writeFaultJSON(w, faultStatus(err), APIError{err.Error()})
		return
	}
	h.logger.Info("fault API: rule removed", "id", info.ID, "remote", r.RemoteAddr)
	writeFaultJSON(w, http.StatusOK, info)
}

func (h *Handler) healFaults(w http.ResponseWriter, r *http.Request) {
	p := h.plane(w)
	if p == nil {
		return
	}
	removed := p.Heal()
	h.logger.Info("fault API: healed", "removed", len(removed), "remote", r.RemoteAddr)
	writeFaultJSON(w, http.StatusOK, FaultsRemoved{Removed: removed})
}

// killMember resolves a kill rule and, when it names this member, answers
// first and then crashes the process. The answer carries a Content-Length
// and is flushed before the crash, so the client reads it whole although
// the connection dies with the process.
func (h *Handler) killMember(w http.ResponseWriter, r *http.Request, p *faults.Plane, spec faults.Spec) {
	info, member, err := p.Kill(spec)
	if err != nil {
		writeFaultJSON(w, faultStatus(err), APIError{err.Error()})
		return
	}
	c, ok := h.m.(Crasher)
	if !ok {
		writeFaultJSON(w, http.StatusNotImplemented, APIError{errKillUnsupported.Error()})
		return
	}
	crash, self := c.FaultCrash(member)
	if !self {
		writeFaultJSON(w, http.StatusOK, KillResult{Info: info})
		return
	}
	h.logger.Warn("fault API: kill rule names this member; crashing", "id", info.ID, "remote", r.RemoteAddr)
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	enc.Encode(KillResult{Info: info, Killed: true})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusAccepted)
	w.Write(body.Bytes())
	// A failed flush changes nothing: the member dies either way.
	_ = http.NewResponseController(w).Flush()
	crash()
}

// decodeSpec reads exactly one JSON object with no unknown fields.
func decodeSpec(body io.Reader) (faults.Spec, error) {
	var s faults.Spec
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return s, fmt.Errorf("admin: fault rule body exceeds %d bytes", maxFaultBody)
		case errors.Is(err, io.EOF):
			return s, errors.New("admin: empty body: want a JSON fault rule")
		}
		return s, fmt.Errorf("admin: bad fault rule JSON: %w", err)
	}
	if dec.More() {
		return s, errors.New("admin: bad fault rule JSON: more than one value in the body")
	}
	return s, nil
}

// faultStatus maps the fault plane's errors to HTTP statuses.
func faultStatus(err error) int {
	switch {
	case errors.Is(err, faults.ErrInvalidRule), errors.Is(err, faults.ErrUnknownMember):
		return http.StatusBadRequest
	case errors.Is(err, faults.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, faults.ErrDuplicateID), errors.Is(err, faults.ErrTooManyRules):
		return http.StatusConflict
	case errors.Is(err, faults.ErrNoLeader):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeFaultJSON writes v as one line of JSON; links such as "n1->n2" stay
// readable (no HTML escaping of '>').
func writeFaultJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
