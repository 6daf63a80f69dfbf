package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

func (s *Server) createDevice(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	body, e, status := readBody(r, maxBodyBytes)
	if e != nil {
		WriteError(w, status, e)
		return
	}
	in, e := decodeDeviceInput(body)
	if e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return
	}
	if !caller.CanOn(auth.Admin, in.Site) {
		s.fail(w, r, errSiteScope("site", auth.Admin, in.Site))
		return
	}
	d, err := s.opts.Devices.Create(r.Context(), DeviceInputFromWire(in))
	s.record(r, caller, "device.create", in.ID, err, nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/devices/"+d.ID)
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(d.Version, 10)))
	WriteJSON(w, http.StatusCreated, deviceToWire(d))
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id := r.PathValue("id")
	if !device.ValidID(id) {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid device id"})
		return
	}
	d, err := s.scopedDevice(r.Context(), caller, auth.Viewer, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := deviceToWire(d)
	if s.opts.Usage != nil {
		u, err := s.opts.Usage.DeviceUsage(r.Context(), d.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out.ChargedBytes, out.StoredBytes = &u.ChargedBytes, &u.StoredBytes
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(d.Version, 10)))
	WriteJSON(w, http.StatusOK, out)
}

var listParams = map[string]bool{"platform": true, "site": true, "tag": true, "limit": true, "cursor": true}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	q := r.URL.Query()
	for k, vs := range q {
		if !listParams[k] {
			WriteError(w, http.StatusBadRequest, &Error{Code: "unknown_parameter", Field: k, Message: "is not a known query parameter (platform, site, tag, limit, cursor)"})
			return
		}
		if len(vs) > 1 {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: k, Message: "may be given once"})
			return
		}
	}
	f := device.Filter{Platform: q.Get("platform"), Site: q.Get("site")}
	if tag := q.Get("tag"); tag != "" {
		f.TagKey, f.TagValue, _ = strings.Cut(tag, "=")
	}
	// The filters are checked by the rules of the fields they match: a value no device can have
	// is a mistake worth naming, not an empty page.
	probe := device.Device{Platform: f.Platform, Site: f.Site}
	if f.TagKey != "" || f.TagValue != "" {
		probe.Tags = map[string]string{f.TagKey: f.TagValue}
	}
	if err := probe.Validate(); err != nil {
		for _, fe := range err.(*device.ValidationError).Fields {
			switch {
			case fe.Field == "platform" && f.Platform != "":
				WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "platform", Message: fe.Message})
				return
			case fe.Field == "site":
				WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "site", Message: fe.Message})
				return
			case strings.HasPrefix(fe.Field, "tags"):
				WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "tag", Message: "must be KEY or KEY=VALUE with a valid tag key and value"})
				return
			}
		}
	}
	p := device.Page{Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > device.MaxPageSize {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", device.MaxPageSize)})
			return
		}
		p.Limit = n
	}
	siteFilter(caller, auth.Viewer, &f)
	items, next, err := s.opts.Devices.List(r.Context(), f, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list := apiwire.DeviceList{Items: convertAll(items, deviceToWire), Next: next}
	if list.Items == nil {
		list.Items = []apiwire.Device{}
	}
	WriteJSON(w, http.StatusOK, list)
}

func (s *Server) updateDevice(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id := r.PathValue("id")
	if !device.ValidID(id) {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid device id"})
		return
	}
	var wp apiwire.DevicePatch
	if err := decodeBody(r, &wp); err != nil {
		s.fail(w, r, err)
		return
	}
	p := patchFromWire(wp)
	var e *Error
	if p.Version, e = ifMatch(r, p.Version, "device"); e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return
	}
	if !caller.Can(auth.Admin) {
		if _, err := s.scopedDevice(r.Context(), caller, auth.Admin, id); err != nil {
			s.fail(w, r, err)
			return
		}
		if p.Site != nil && !caller.CanOn(auth.Admin, *p.Site) {
			s.fail(w, r, errSiteScope("site", auth.Admin, *p.Site))
			return
		}
	}
	d, err := s.opts.Devices.Update(r.Context(), id, p)
	s.record(r, caller, "device.update", id, err, patchFields(wp))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(d.Version, 10)))
	WriteJSON(w, http.StatusOK, deviceToWire(d))
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id := r.PathValue("id")
	if !device.ValidID(id) {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid device id"})
		return
	}
	if !caller.Can(auth.Admin) {
		if _, err := s.scopedDevice(r.Context(), caller, auth.Admin, id); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if err := s.opts.Devices.Delete(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) importDevices(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	q := r.URL.Query()
	for k, vs := range q {
		if k != "mode" {
			WriteError(w, http.StatusBadRequest, &Error{Code: "unknown_parameter", Field: k, Message: "is not a known query parameter (mode)"})
			return
		}
		if len(vs) > 1 {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: k, Message: "may be given once"})
			return
		}
	}
	mode := device.ImportMode(q.Get("mode"))
	switch mode {
	case "":
		mode = device.ImportAtomic
	case device.ImportAtomic, device.ImportPerRow:
	default:
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "mode", Message: "must be atomic or per-row"})
		return
	}
	body, e, status := readBody(r, maxImportBytes)
	if e != nil {
		WriteError(w, status, e)
		return
	}
	ct := ""
	if h := r.Header.Get("Content-Type"); h != "" {
		var err error
		if ct, _, err = mime.ParseMediaType(h); err != nil {
			ct = "unparsable"
		}
	}
	var rows []apiwire.DeviceInput
	switch ct {
	case "application/json", "":
		var e *Error
		if rows, e = parseJSONRows(body); e != nil {
			status := http.StatusBadRequest
			if e.Code == "payload_too_large" {
				status = http.StatusRequestEntityTooLarge
			}
			WriteError(w, status, e)
			return
		}
	case "text/csv":
		var e *Error
		if rows, e = parseCSV(body); e != nil {
			WriteError(w, http.StatusBadRequest, e)
			return
		}
	default:
		WriteError(w, http.StatusUnsupportedMediaType, &Error{Code: "unsupported_media_type", Field: "Content-Type", Message: "must be application/json or text/csv"})
		return
	}
	if len(rows) == 0 {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "rows", Message: "must hold at least one device"})
		return
	}
	if len(rows) > device.MaxImportRows {
		WriteError(w, http.StatusRequestEntityTooLarge, &Error{Code: "payload_too_large", Field: "rows", Message: fmt.Sprintf("at most %d devices per import", device.MaxImportRows)})
		return
	}
	inputs := make([]device.Input, len(rows))
	for i, row := range rows {
		if !caller.CanOn(auth.Admin, row.Site) {
			s.fail(w, r, errSiteScope(fmt.Sprintf("rows[%d].site", i+1), auth.Admin, row.Site))
			return
		}
		inputs[i] = DeviceInputFromWire(row)
	}
	res, err := s.opts.Devices.Import(r.Context(), inputs, mode)
	s.record(r, caller, "device.import", "", err, importDetail(res, len(inputs)))
	switch {
	case err != nil:
		// An import refused as a whole still explains every row.
		s.failFor(w, r, err, "", map[string]any{"result": importResultToWire(res)})
	case res.Created == len(inputs):
		WriteJSON(w, http.StatusCreated, importResultToWire(res))
	default:
		WriteJSON(w, http.StatusOK, importResultToWire(res))
	}
}

// parseJSONRows reads a JSON array of devices; an error names the row ("rows[3].port", rows
// counting from 1 as in the import result).
func parseJSONRows(body []byte) ([]apiwire.DeviceInput, *Error) {
	var raws []json.RawMessage
	if e := decodeStrict(body, &raws); e != nil {
		if e.Code == "invalid_type" && e.Field == bodyField {
			e.Field, e.Message = "rows", "must be a JSON array of devices"
		}
		return nil, e
	}
	if len(raws) > device.MaxImportRows {
		return nil, &Error{Code: "payload_too_large", Field: "rows", Message: fmt.Sprintf("at most %d devices per import", device.MaxImportRows)}
	}
	rows := make([]apiwire.DeviceInput, len(raws))
	for i, raw := range raws {
		at := fmt.Sprintf("rows[%d]", i+1)
		var e *Error
		if rows[i], e = decodeDeviceInput(raw); e != nil {
			if e.Field == bodyField {
				e.Field = at
			} else {
				e.Field = at + "." + e.Field
			}
			return nil, e
		}
	}
	return rows, nil
}

// csvColumns are the columns a CSV import understands; id, name, host and username are required.
var csvColumns = []string{"id", "name", "host", "port", "platform", "username", "auth_method", "site", "tags",
	"host_key", "trust_on_first_use", "legacy_algorithms", "credential_profile", "jump_host_ids", "password", "private_key", "passphrase", "enable_secret"}

// parseCSV reads a header row and device rows. tags is "k=v;k2=v2"; jump_host_ids is the chain
// in order, "first;second".
func parseCSV(body []byte) ([]apiwire.DeviceInput, *Error) {
	rd := csv.NewReader(bytes.NewReader(body))
	rd.FieldsPerRecord = 0
	header, err := rd.Read()
	if err == io.EOF {
		return nil, &Error{Code: "invalid_csv", Field: "rows", Message: "CSV is empty; the first row must name the columns"}
	}
	if err != nil {
		return nil, &Error{Code: "invalid_csv", Field: "rows", Message: "malformed CSV header: " + csvReason(err)}
	}
	known := map[string]bool{}
	for _, c := range csvColumns {
		known[c] = true
	}
	idx := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h == "" {
			return nil, &Error{Code: "invalid_csv", Field: "header", Message: fmt.Sprintf("column %d has no name", i+1)}
		}
		if !known[h] {
			return nil, &Error{Code: "unknown_field", Field: h, Message: "is not a known CSV column (" + strings.Join(csvColumns, ", ") + ")"}
		}
		if _, dup := idx[h]; dup {
			return nil, &Error{Code: "invalid_csv", Field: h, Message: "column appears twice"}
		}
		idx[h] = i
	}
	var rows []apiwire.DeviceInput
	for line := 2; ; line++ {
		rec, err := rd.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, &Error{Code: "invalid_csv", Field: fmt.Sprintf("rows[%d]", line-1), Message: "malformed CSV: " + csvReason(err)}
		}
		get := func(col string) string {
			if i, ok := idx[col]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		field := func(col string) string { return fmt.Sprintf("rows[%d].%s", line-1, col) }
		in := apiwire.DeviceInput{
			ID: get("id"), Name: get("name"), Host: get("host"), Platform: get("platform"), Username: get("username"),
			AuthMethod: get("auth_method"), Site: get("site"), HostKey: get("host_key"),
			CredentialProfile: get("credential_profile"), Password: get("password"), PrivateKey: get("private_key"), Passphrase: get("passphrase"),
			EnableSecret: get("enable_secret"),
		}
		if p := get("port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, &Error{Code: "invalid_type", Field: field("port"), Message: "must be a whole number"}
			}
			if n == 0 {
				return nil, portZero(field(""))
			}
			in.Port = n
		}
		for col, dst := range map[string]*bool{"trust_on_first_use": &in.TrustOnFirstUse, "legacy_algorithms": &in.LegacyAlgorithms} {
			if v := get(col); v != "" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, &Error{Code: "invalid_type", Field: field(col), Message: "must be true or false"}
				}
				*dst = b
			}
		}
		if c := get("jump_host_ids"); c != "" {
			for _, id := range strings.Split(c, ";") {
				in.JumpHostIDs = append(in.JumpHostIDs, strings.TrimSpace(id))
			}
		}
		if t := get("tags"); t != "" {
			in.Tags = map[string]string{}
			for _, pair := range strings.Split(t, ";") {
				k, v, ok := strings.Cut(pair, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return nil, &Error{Code: "invalid", Field: field("tags"), Message: "must be key=value pairs separated by ';'"}
				}
				in.Tags[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		rows = append(rows, in)
		if len(rows) > device.MaxImportRows {
			return rows, nil
		}
	}
}

func csvReason(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return "unreadable"
}

// bulkUpdateDevices sets the same fields (the jump host chain) on many devices at once, all or
// nothing: every id must name a device on a site where the caller is an admin (the others are
// named in a 400, unknown_ids, as ids that do not exist: scope reveals nothing), and one audit
// entry records the request.
func (s *Server) bulkUpdateDevices(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var in apiwire.DeviceBulkUpdate
	if err := decodeBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	set := device.BulkSet{JumpHostIDs: in.Set.JumpHostIDs}
	ds, err := s.opts.Devices.BulkUpdate(r.Context(), in.DeviceIDs, set, func(d device.Device) bool {
		return caller.CanOn(auth.Admin, d.Site)
	})
	detail := map[string]string{"devices": strconv.Itoa(len(in.DeviceIDs))}
	if err == nil { // the ids and the chain were valid: they are worth recording
		detail["device_ids"] = strings.Join(in.DeviceIDs, ",")
		detail["jump_host_ids"] = strings.Join(*in.Set.JumpHostIDs, ",")
	}
	s.record(r, caller, "device.bulk_update", "", err, detail)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, apiwire.DeviceBulkUpdated{Updated: len(ds), Items: convertAll(ds, deviceToWire)})
}
