{{/*
Name of everything the release owns except the Job: the release name, cut to 63 characters
(label values and many object names stop there). The result ConfigMap uses it as is, so
`slogate describe -n NAMESPACE RELEASE` finds it.
*/}}
{{- define "slo-pr.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The Job's name: one per release revision, because a Job's pod template cannot be changed
and every `helm upgrade` must start a fresh run. Jobs label their pods with their name, so it
stays within 63 characters.
*/}}
{{- define "slo-pr.jobName" -}}
{{- $suffix := printf "-%d" (int .Release.Revision) -}}
{{- printf "%s%s" (.Release.Name | trunc (int (sub 63 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end -}}

{{/* Name of the ConfigMap that holds the experiment spec. */}}
{{- define "slo-pr.specName" -}}
{{- printf "%s-spec" (.Release.Name | trunc 58 | trimSuffix "-") -}}
{{- end -}}

{{/* Labels that select this release's objects. */}}
{{- define "slo-pr.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "slo-pr.labels" -}}
{{ include "slo-pr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: slogate
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Path where the token Secret is mounted; the spec points the runner at its key `token`. */}}
{{- define "slo-pr.tokenDir" -}}/var/run/secrets/slogate/github{{- end -}}

{{/* Path where the spec ConfigMap is mounted. */}}
{{- define "slo-pr.specDir" -}}/etc/slogate{{- end -}}

{{/*
The experiment spec, in the shape slogate's `run --spec` reads (ExperimentSpec). Checks that
need two values at once live here, so `helm template` names the values and the reason.
*/}}
{{- define "slo-pr.spec" -}}
{{- $v := .Values -}}
{{- if and (not (kindIs "invalid" $v.numQueries)) (not (kindIs "invalid" $v.duration)) -}}
{{- fail "numQueries and duration exclude each other: set one of them" -}}
{{- end -}}
{{- $promote := or $v.owner $v.repo -}}
{{- if and $promote (not (and $v.owner $v.repo)) -}}
{{- fail "owner and repo go together: set both to open a pull request, or neither" -}}
{{- end -}}
{{- if and $promote (not (and $v.base $v.head)) -}}
{{- fail "base and head are needed when owner and repo are set: the pull request goes from head into base" -}}
{{- end -}}
{{- if and $promote (eq $v.base $v.head) -}}
{{- fail (printf "head %q is also the base branch: a pull request needs two branches" $v.head) -}}
{{- end -}}
{{- $load := dict "connections" (int64 $v.connections) -}}
{{- if not (kindIs "invalid" $v.QPS) -}}
{{- if le (float64 $v.QPS) 0.0 -}}{{- fail (printf "QPS must be greater than 0, not %v; leave it out to send as fast as the connections go" $v.QPS) -}}{{- end -}}
{{- $_ := set $load "qps" (float64 $v.QPS) -}}
{{- end -}}
{{- if not (kindIs "invalid" $v.duration) -}}
{{- $_ := set $load "duration" $v.duration -}}
{{- else -}}
{{- $_ := set $load "numRequests" (int64 (default 100 $v.numQueries)) -}}
{{- end -}}
{{- if $v.payloadURL -}}{{- $_ := set $load "payloadUrl" $v.payloadURL -}}{{- end -}}
{{- if $v.contentType -}}{{- $_ := set $load "contentType" $v.contentType -}}{{- end -}}
{{- $slos := list -}}
{{- range $pair := list (list "http/latency-mean" $v.limitMeanLatency) (list "http/error-rate" $v.limitErrorRate) (list "http/latency-p95" $v.limit95thPercentileLatency) -}}
{{- if not (kindIs "invalid" (index $pair 1)) -}}
{{- $slos = append $slos (dict "metric" (index $pair 0) "upperLimit" (float64 (index $pair 1))) -}}
{{- end -}}
{{- end -}}
{{- range $v.extraSLOs -}}
{{- $slo := dict "metric" .metric -}}
{{- if hasKey . "upperLimit" -}}{{- $_ := set $slo "upperLimit" (float64 .upperLimit) -}}{{- end -}}
{{- if hasKey . "lowerLimit" -}}{{- $_ := set $slo "lowerLimit" (float64 .lowerLimit) -}}{{- end -}}
{{- $slos = append $slos $slo -}}
{{- end -}}
{{- $spec := dict
  "name" (include "slo-pr.fullname" .)
  "namespace" .Release.Namespace
  "versions" (list (dict "name" "candidate" "url" $v.URL))
  "load" $load
  "slos" $slos
  "confidence" (float64 $v.confidence)
  "result" (dict "configMap" (include "slo-pr.fullname" .))
-}}
{{- if $promote -}}
{{- $_ := set $spec "promotion" (dict
  "owner" $v.owner "repo" $v.repo "base" $v.base "head" $v.head
  "apiUrl" $v.host
  "tokenFile" (printf "%s/token" (include "slo-pr.tokenDir" .))) -}}
{{- end -}}
{{- toYaml $spec -}}
{{- end -}}
