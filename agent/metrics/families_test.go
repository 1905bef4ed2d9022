package metrics

import "testing"

func TestFamilies(t *testing.T) {
	have, err := Families()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"havip_agent_build_info", "havip_agent_vrrp_state", "havip_agent_transitions_total",
		"havip_agent_failover_phase_duration_seconds", "havip_agent_vip_present",
		"havip_agent_cloud_requests_total", "havip_agent_cloud_owned", "havip_agent_check_instance_info",
	} {
		if !have[want] {
			t.Errorf("Families lacks %s", want)
		}
	}
	for in, want := range map[string]string{
		"havip_agent_failover_phase_duration_seconds_bucket": "havip_agent_failover_phase_duration_seconds",
		"havip_agent_transitions_total":                      "havip_agent_transitions_total",
	} {
		if got := Family(in); got != want {
			t.Errorf("Family(%s) = %s, want %s", in, got, want)
		}
	}
}
