package emulator

import (
	"net/http"
	"strings"
)

// routed is the operation a request maps to.
type routed struct {
	op     string
	public bool // no authentication (metadata)
	handle func(e *Emulator, c *call) answer
}

// Operation names, used in logs and for fault injection.
const (
	OpHaVipCreate       = "havip.create"
	OpHaVipList         = "havip.list"
	OpHaVipDetail       = "havip.detail"
	OpHaVipUpdate       = "havip.update"
	OpHaVipDelete       = "havip.delete"
	OpHaVipAttach       = "havip.attach"
	OpHaVipDetach       = "havip.detach"
	OpHaVipBindPublicIP = "havip.bindPublicIp"
	OpHaVipUnbindPublic = "havip.unbindPublicIp"
	OpRouteTableGet     = "route.table.get"
	OpRouteRuleList     = "route.rule.list"
	OpRouteRuleCreate   = "route.rule.create"
	OpRouteRuleUpdate   = "route.rule.update"
	OpRouteRuleDelete   = "route.rule.delete"
	OpRouteRuleSwitch   = "route.rule.switch"
	OpSubnetDetail      = "subnet.detail"
	OpEIPList           = "eip.list"
	OpEIPBind           = "eip.bind"
	OpEIPUnbind         = "eip.unbind"
	// OpEIPSettle names the change log entries of an EIP bind or unbind that finished after
	// its delay (no request).
	OpEIPSettle         = "eip.settle"
	OpMetaInstanceID    = "metadata.instance-shortid"
	OpMetaSTSCredential = "metadata.sts-credential"
)

func has(r *http.Request, key string) bool {
	_, ok := r.URL.Query()[key]
	return ok
}

// route maps a request to its operation, strictly by path, method and action flag.
func (e *Emulator) route(r *http.Request) (routed, *apiError) {
	p := r.URL.Path
	m := r.Method
	bad := func(op string) (routed, *apiError) {
		return routed{op: op}, errf(400, "InvalidURI", "Could not parse the specified URI: %s %s.", m, p)
	}
	if isMetadata(p) {
		if m != http.MethodGet {
			return routed{op: "metadata.unknown", public: true}, errf(405, "MethodNotAllowed", "Only GET is allowed.")
		}
		switch p {
		case metaInstanceIDPath:
			return routed{op: OpMetaInstanceID, public: true, handle: (*Emulator).metaInstanceID}, nil
		case metaSTSCredentialPath:
			return routed{op: OpMetaSTSCredential, public: true, handle: (*Emulator).metaSTSCredential}, nil
		}
		return routed{op: "metadata.unknown", public: true}, errf(404, "NoSuchObject", "No such metadata %q.", p)
	}
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) < 2 || segs[0] != "v1" {
		if len(segs) >= 1 && strings.HasPrefix(segs[0], "v") && segs[0] != "v1" {
			return routed{op: "unknown"}, errf(404, "InvalidVersion", "The API version specified was invalid.")
		}
		return bad("unknown")
	}
	switch {
	case segs[1] == "havip" && len(segs) == 2:
		switch m {
		case http.MethodPost:
			return routed{op: OpHaVipCreate, handle: (*Emulator).haVipCreate}, nil
		case http.MethodGet:
			return routed{op: OpHaVipList, handle: (*Emulator).haVipList}, nil
		}
	case segs[1] == "havip" && len(segs) == 3 && segs[2] != "":
		switch m {
		case http.MethodGet:
			return routed{op: OpHaVipDetail, handle: (*Emulator).haVipDetail}, nil
		case http.MethodDelete:
			return routed{op: OpHaVipDelete, handle: (*Emulator).haVipDelete}, nil
		case http.MethodPut:
			actions := map[string]routed{
				"modifyAttribute": {op: OpHaVipUpdate, handle: (*Emulator).haVipUpdate},
				"attach":          {op: OpHaVipAttach, handle: (*Emulator).haVipAttach},
				"detach":          {op: OpHaVipDetach, handle: (*Emulator).haVipDetach},
				"bindPublicIp":    {op: OpHaVipBindPublicIP, handle: (*Emulator).haVipBindPublicIP},
				"unbindPublicIp":  {op: OpHaVipUnbindPublic, handle: (*Emulator).haVipUnbindPublicIP},
			}
			var found []routed
			for k, rt := range actions {
				if has(r, k) {
					found = append(found, rt)
				}
			}
			if len(found) == 1 {
				return found[0], nil
			}
			return bad("havip.unknown")
		}
	case segs[1] == "route" && len(segs) == 2:
		if m == http.MethodGet {
			return routed{op: OpRouteTableGet, handle: (*Emulator).routeTableGet}, nil
		}
	case segs[1] == "route" && len(segs) == 3 && segs[2] == "rule":
		switch m {
		case http.MethodGet:
			return routed{op: OpRouteRuleList, handle: (*Emulator).routeRuleList}, nil
		case http.MethodPost:
			return routed{op: OpRouteRuleCreate, handle: (*Emulator).routeRuleCreate}, nil
		}
	case segs[1] == "route" && len(segs) == 4 && segs[2] == "rule" && segs[3] != "":
		switch m {
		case http.MethodPut:
			if has(r, "switchRouteHA") {
				return routed{op: OpRouteRuleSwitch, handle: (*Emulator).routeRuleSwitch}, nil
			}
			return routed{op: OpRouteRuleUpdate, handle: (*Emulator).routeRuleUpdate}, nil
		case http.MethodDelete:
			return routed{op: OpRouteRuleDelete, handle: (*Emulator).routeRuleDelete}, nil
		}
	case segs[1] == "subnet" && len(segs) == 3 && segs[2] != "":
		if m == http.MethodGet {
			return routed{op: OpSubnetDetail, handle: (*Emulator).subnetDetail}, nil
		}
	case segs[1] == "eip" && len(segs) == 2:
		if m == http.MethodGet {
			return routed{op: OpEIPList, handle: (*Emulator).eipList}, nil
		}
	case segs[1] == "eip" && len(segs) == 3 && segs[2] != "":
		if m == http.MethodPut {
			b, u := has(r, "bind"), has(r, "unbind")
			switch {
			case b && !u:
				return routed{op: OpEIPBind, handle: (*Emulator).eipBind}, nil
			case u && !b:
				return routed{op: OpEIPUnbind, handle: (*Emulator).eipUnbind}, nil
			}
		}
	}
	return bad("unknown")
}

// Metadata paths: the instance id, and the instance role's temporary credentials (BCC, "Set IAM
// Role": one request, no role-name step).
const (
	metaInstanceIDPath    = "/1.0/meta-data/instance-shortid"
	metaSTSCredentialPath = "/latest/meta-data/sts-credential"
)

// isMetadata reports whether p is under a metadata service prefix.
func isMetadata(p string) bool {
	return strings.HasPrefix(p, "/1.0/meta-data/") || strings.HasPrefix(p, "/latest/meta-data/")
}

// pathID answers the last path segment (the resource id).
func pathID(c *call) string {
	p := c.r.URL.Path
	return p[strings.LastIndexByte(p, '/')+1:]
}
