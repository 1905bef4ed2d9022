package emulator

// subnetJSON is a subnet as GET /v1/subnet/{id} answers it (vpc.Subnet of bce-sdk-go; doc/VPC.md,
// "Query a specified subnet": name, zone, cidr, VPC, type, description, available IPs, tags).
type subnetJSON struct {
	SubnetID              string   `json:"subnetId"`
	Name                  string   `json:"name"`
	ZoneName              string   `json:"zoneName"`
	Cidr                  string   `json:"cidr"`
	VPCID                 string   `json:"vpcId"`
	SubnetType            string   `json:"subnetType"`
	Description           string   `json:"description"`
	AvailableIP           int      `json:"availableIp"`
	AvailableUnreservedIP int      `json:"availableUnreservedIp"`
	Tags                  []string `json:"tags"`
}

// subnetDetail answers {"subnet": {...}}. The zone, name and type are the emulator's own (the
// seed has none of them); the available addresses count the subnet's addresses minus the
// network, gateway and broadcast addresses and those instances and HAVIPs use.
func (e *Emulator) subnetDetail(c *call) answer {
	id := pathID(c)
	s := e.w.subnets[id]
	if s == nil {
		return answer{err: notFound("subnet", id)}
	}
	free := 0
	a := s.cidr.Masked().Addr().Next().Next()
	for ; s.cidr.Contains(a) && s.cidr.Contains(a.Next()); a = a.Next() {
		if !e.w.ipInUse(a) {
			free++
		}
	}
	return okJSON(map[string]subnetJSON{"subnet": {
		SubnetID: s.id, Name: s.id, ZoneName: e.w.region + "-a", Cidr: s.cidr.String(), VPCID: s.vpcID, SubnetType: "BCC",
		AvailableIP: free, AvailableUnreservedIP: free, Tags: []string{},
	}})
}
