// cmd/otlp_encode.h - the metric families as an OTLP ExportMetricsServiceRequest, in OTLP/HTTP JSON.
#pragma once

// The OpenTelemetry protocol's JSON mapping of protobuf (opentelemetry-proto,
// metrics/v1): resourceMetrics -> scopeMetrics -> metrics, 64-bit integers
// as decimal strings, enums as integers. The figures are those of the
// Prometheus text (cmd/metric_families.h renders both), under the same
// names and with the same labels as attributes.

#include <cstdint>
#include <string>
#include <vector>

#include "coblk/cmd/metric_families.h"

namespace coblk::cmd {

/// The body of one OTLP/HTTP JSON export of `families`, observed at
/// `now_unix_ns` (CLOCK_REALTIME). The resource carries service.name
/// "coblk" and host.name `host`; one scope, "coblk". A counter becomes a
/// `sum` (isMonotonic true, cumulative temporality 2, startTimeUnixNano the
/// counting process's start where known), a gauge a `gauge`, a histogram a
/// `histogram` with explicitBounds in seconds and bucketCounts per bucket
/// (not cumulative). Values in seconds are asDouble, the others asInt; a
/// family without samples is left out. Units: "s" for seconds, "By" for
/// bytes, else "1".
std::string encode_otlp_metrics(const std::vector<MetricFamily>& families, std::uint64_t now_unix_ns,
                                const std::string& host);

}  // namespace coblk::cmd
