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

{{/*
How many load pods the Job runs (the value `parallelism`, 1 to 64).
*/}}
{{- define "slo-pr.pods" -}}
{{- include "slo-pr.number" (dict "name" "parallelism" "value" (default 1 .Values.parallelism) "integer" true "min" 1 "max" 64) -}}
{{- end -}}

{{/*
The names of the load pods' partial ConfigMaps, one per completion index, space-separated:
<job>-partial-0 ... (what slogate's partial store writes).
*/}}
{{- define "slo-pr.partialNames" -}}
{{- $job := include "slo-pr.jobName" . -}}
{{- $names := list -}}
{{- range $i := until (int (include "slo-pr.pods" .)) -}}{{- $names = append $names (printf "%s-partial-%d" $job $i) -}}{{- end -}}
{{- $names | join " " -}}
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
{{- $load := dict "connections" (int64 (include "slo-pr.number" (dict "name" "connections" "value" $v.connections "integer" true "min" 1 "max" 10000))) -}}
{{- if not (kindIs "invalid" $v.QPS) -}}
{{- $qps := include "slo-pr.number" (dict "name" "QPS" "value" $v.QPS "min" 0 "minExclusive" true "hint" "; leave it out (null) to send as fast as the connections go") -}}
{{- $_ := set $load "qps" (float64 $qps) -}}
{{- end -}}
{{- $loop := not (kindIs "invalid" $v.iterationsPerLoop) -}}
{{- if and $loop (or (not (kindIs "invalid" $v.numQueries)) (not (kindIs "invalid" $v.duration))) -}}
{{- fail "iterationsPerLoop and intervalSeconds set how long load runs: leave numQueries and duration out" -}}
{{- end -}}
{{- if $loop -}}
{{- else if not (kindIs "invalid" $v.duration) -}}
{{- if not (regexMatch "^([0-9]+(ns|us|ms|s|m|h))+$" $v.duration) -}}
{{- fail (printf "duration %s is not a duration; write it like 30s, 2m or 1h30m" (include "slo-pr.shown" $v.duration)) -}}
{{- end -}}
{{- $_ := set $load "duration" $v.duration -}}
{{- else -}}
{{- $n := 100 -}}
{{- if not (kindIs "invalid" $v.numQueries) -}}{{- $n = include "slo-pr.number" (dict "name" "numQueries" "value" $v.numQueries "integer" true "min" 1) -}}{{- end -}}
{{- $_ := set $load "numRequests" (int64 $n) -}}
{{- end -}}
{{- if $v.payloadURL -}}{{- $_ := set $load "payloadUrl" $v.payloadURL -}}{{- end -}}
{{- if $v.contentType -}}{{- $_ := set $load "contentType" $v.contentType -}}{{- end -}}
{{- $slos := list -}}
{{- $fraction := "; it is a fraction (0.01 means 1 %)" -}}
{{- /* A gRPC target's limits are on its grpc/... metrics. */ -}}
{{- $m := ternary "grpc" "http" (not (empty $v.grpc)) -}}
{{- range $limit := list (list "limitMeanLatency" (printf "%s/latency-mean" $m) $v.limitMeanLatency (dict)) (list "limitErrorRate" (printf "%s/error-rate" $m) $v.limitErrorRate (dict "max" 1 "hint" $fraction)) (list "limit95thPercentileLatency" (printf "%s/latency-p95" $m) $v.limit95thPercentileLatency (dict)) -}}
{{- if not (kindIs "invalid" (index $limit 2)) -}}
{{- $check := merge (dict "name" (index $limit 0) "value" (index $limit 2) "min" 0) (index $limit 3) -}}
{{- $slos = append $slos (dict "metric" (index $limit 1) "upperLimit" (float64 (include "slo-pr.number" $check))) -}}
{{- end -}}
{{- end -}}
{{- range $i, $extra := $v.extraSLOs -}}
{{- $slo := dict "metric" $extra.metric -}}
{{- range $field := list "upperLimit" "lowerLimit" -}}
{{- if hasKey $extra $field -}}
{{- $_ := set $slo $field (float64 (include "slo-pr.number" (dict "name" (printf "extraSLOs[%d].%s" $i $field) "value" (get $extra $field) "min" 0))) -}}
{{- end -}}
{{- end -}}
{{- $slos = append $slos $slo -}}
{{- end -}}
{{- $versions := list (dict "name" "candidate" "url" $v.URL) -}}
{{- $relative := list (list "maxIncreaseMeanLatency" (printf "%s/latency-mean" $m) $v.maxIncreaseMeanLatency) (list "maxIncrease95thPercentileLatency" (printf "%s/latency-p95" $m) $v.maxIncrease95thPercentileLatency) (list "maxIncreaseErrorRate" (printf "%s/error-rate" $m) $v.maxIncreaseErrorRate) -}}
{{- range $r := $relative -}}
{{- if not (kindIs "invalid" (index $r 2)) -}}
{{- if not $v.baselineURL -}}
{{- fail (printf "%s compares the candidate with the baseline: set baselineURL too" (index $r 0)) -}}
{{- end -}}
{{- $given := index $r 2 -}}
{{- $change := "" -}}
{{- if and (kindIs "string" $given) (hasSuffix "%" (trim $given)) -}}
{{- if eq (index $r 0) "maxIncreaseErrorRate" -}}
{{- fail (printf "maxIncreaseErrorRate %s: give the increase as a fraction (0.01 is one percentage point); the baseline's error rate is often 0" (include "slo-pr.shown" $given)) -}}
{{- end -}}
{{- $pct := include "slo-pr.number" (dict "name" (index $r 0) "value" (trimSuffix "%" (trim $given)) "min" 0 "hint" "; write it like 10% or 5") -}}
{{- $change = printf "%s%%" $pct -}}
{{- $slos = append $slos (dict "metric" (index $r 1) "versus" "baseline" "maxIncrease" $change) -}}
{{- else -}}
{{- $check := dict "name" (index $r 0) "value" $given "min" 0 -}}
{{- if eq (index $r 0) "maxIncreaseErrorRate" -}}{{- $check = merge $check (dict "max" 1 "hint" $fraction) -}}{{- end -}}
{{- $slos = append $slos (dict "metric" (index $r 1) "versus" "baseline" "maxIncrease" (float64 (include "slo-pr.number" $check))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $v.baselineURL -}}
{{- $versions = list (dict "name" "baseline" "role" "baseline" "url" $v.baselineURL "variables" (dict "promote" "baseline")) (dict "name" "candidate" "url" $v.URL "variables" (dict "promote" "candidate")) -}}
{{- end -}}
{{- $spec := dict
  "name" (include "slo-pr.fullname" .)
  "namespace" .Release.Namespace
  "versions" $versions
  "load" $load
  "slos" $slos
  "confidence" (float64 (include "slo-pr.number" (dict "name" "confidence" "value" $v.confidence "min" 0 "minExclusive" true "max" 1 "maxExclusive" true)))
  "result" (dict "configMap" (include "slo-pr.fullname" .))
-}}
{{- $strategy := dict -}}
{{- if $v.baselineURL -}}
{{- $_ := set $strategy "testingPattern" "Canary" -}}
{{- end -}}
{{- if $v.deploymentPattern -}}
{{- if not (has $v.deploymentPattern (list "FixedSplit" "Progressive" "BlueGreen")) -}}
{{- fail (printf "deploymentPattern %s is none of FixedSplit, Progressive, BlueGreen" (include "slo-pr.shown" $v.deploymentPattern)) -}}
{{- end -}}
{{- if and (ne $v.deploymentPattern "FixedSplit") (not $v.baselineURL) -}}
{{- fail (printf "deploymentPattern %s shifts traffic from the baseline to the candidate: set baselineURL too" $v.deploymentPattern) -}}
{{- end -}}
{{- $_ := set $strategy "deploymentPattern" $v.deploymentPattern -}}
{{- end -}}
{{- if $v.weights -}}
{{- $w := dict -}}
{{- range $field := list "maxCandidateWeight" "maxCandidateWeightIncrement" -}}
{{- if hasKey $v.weights $field -}}
{{- $_ := set $w $field (int64 (include "slo-pr.number" (dict "name" (printf "weights.%s" $field) "value" (get $v.weights $field) "integer" true "min" 0 "max" 100))) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $strategy "weights" $w -}}
{{- end -}}
{{- if $strategy -}}
{{- $_ := set $spec "strategy" $strategy -}}
{{- end -}}
{{- if $loop -}}
{{- $_ := set $spec "duration" (dict
  "intervalSeconds" (int64 (include "slo-pr.number" (dict "name" "intervalSeconds" "value" (default 20 $v.intervalSeconds) "integer" true "min" 1)))
  "iterationsPerLoop" (int64 (include "slo-pr.number" (dict "name" "iterationsPerLoop" "value" $v.iterationsPerLoop "integer" true "min" 1)))) -}}
{{- end -}}
{{- if $v.grpc -}}
{{- if not (and $v.grpc.proto $v.grpc.call) -}}
{{- fail "grpc needs proto (the .proto file's text, e.g. --set-file grpc.proto=hello.proto) and call (package.Service/Method)" -}}
{{- end -}}
{{- $call := dict "proto" (printf "%s/service.proto" (include "slo-pr.specDir" .)) "call" $v.grpc.call -}}
{{- if $v.grpc.data -}}{{- $_ := set $call "data" $v.grpc.data -}}{{- end -}}
{{- if $v.grpc.metadata -}}{{- $_ := set $call "metadata" $v.grpc.metadata -}}{{- end -}}
{{- range $version := $versions -}}
{{- $_ := set $version "grpc" $call -}}
{{- end -}}
{{- end -}}
{{- range $version := $versions -}}
{{- $ref := ternary $v.candidateWeightObjRef $v.baselineWeightObjRef (eq $version.name "candidate") -}}
{{- if $ref -}}
{{- $_ := set $version "weightObjRef" (omit $ref "resource") -}}
{{- end -}}
{{- end -}}
{{- if $v.readiness -}}
{{- if $v.readiness.objects -}}
{{- $objects := list -}}
{{- range $o := $v.readiness.objects -}}{{- $objects = append $objects (omit $o "resource") -}}{{- end -}}
{{- $_ := set $spec "readiness" (dict "timeout" (default "5m" $v.readiness.timeout) "objects" $objects) -}}
{{- end -}}
{{- end -}}
{{- $pods := int (include "slo-pr.pods" .) -}}
{{- if gt $pods 1 -}}
{{- if $loop -}}
{{- fail (printf "parallelism %d cannot run the experiment loop (iterationsPerLoop): use parallelism 1, or leave iterationsPerLoop out" $pods) -}}
{{- end -}}
{{- if not (has $v.parallelismOnMissing (list "fail" "judgeWhatArrived")) -}}
{{- fail (printf "parallelismOnMissing %s is neither fail nor judgeWhatArrived" (include "slo-pr.shown" $v.parallelismOnMissing)) -}}
{{- end -}}
{{- if not (regexMatch "^([0-9]+(ms|s|m|h))+$" (toString $v.parallelismReportTimeout)) -}}
{{- fail (printf "parallelismReportTimeout %s is not a duration; write it like 30s or 2m" (include "slo-pr.shown" $v.parallelismReportTimeout)) -}}
{{- end -}}
{{- $_ := set $spec "parallelism" (dict "pods" (int64 $pods) "onMissing" $v.parallelismOnMissing "reportTimeout" $v.parallelismReportTimeout) -}}
{{- end -}}
{{- if $v.actions -}}
{{- $finish := list -}}
{{- range $action := $v.actions -}}
{{- $action = deepCopy $action -}}
{{- if and (kindIs "map" $action) (kindIs "map" $action.gitops) -}}
{{- $g := $action.gitops -}}
{{- if not (hasKey $g "apiUrl") -}}{{- $_ := set $g "apiUrl" $v.host -}}{{- end -}}
{{- if and $v.headSHA (eq (toString $g.branch) (toString $v.head)) (not (hasKey $g "headSha")) -}}
{{- $_ := set $g "headSha" $v.headSHA -}}
{{- end -}}
{{- end -}}
{{- $finish = append $finish $action -}}
{{- end -}}
{{- $_ := set $spec "actions" (dict "finish" $finish) -}}
{{- end -}}
{{- if $promote -}}
{{- $promotion := dict
  "owner" $v.owner "repo" $v.repo "base" $v.base "head" $v.head
  "apiUrl" $v.host
  "tokenFile" (printf "%s/token" (include "slo-pr.tokenDir" .)) -}}
{{- if $v.headSHA -}}{{- $_ := set $promotion "headSha" $v.headSHA -}}{{- end -}}
{{- $_ := set $spec "promotion" $promotion -}}
{{- end -}}
{{- toYaml $spec -}}
{{- end -}}

{{/*
A value quoted for an error message: at most 64 characters of it.
*/}}
{{- define "slo-pr.shown" -}}
{{- $text := toString . -}}
{{- if gt (len $text) 64 -}}{{- printf "%q… (%d characters)" (trunc 64 $text) (len $text) -}}{{- else -}}{{- printf "%q" $text -}}{{- end -}}
{{- end -}}

{{/*
A number value, checked and returned as the decimal text the user wrote, so the spec holds
exactly that number. Helm's schema messages for numbers ("got string, want integer",
"exclusiveMinimum: got 0, want 0") do not say what to write, so the checks live here.
Call with (dict "name" "QPS" "value" .Values.QPS "integer" false "min" 0 "minExclusive"
true "max" 1 "maxExclusive" false "hint" "..."); min and max are optional.
At most 15 digits: every such decimal survives the trip through a float64 unchanged, and
the spec reader reads float64s.
*/}}
{{- define "slo-pr.number" -}}
{{- $v := .value -}}
{{- $name := .name -}}
{{- $text := "" -}}
{{- if kindIs "string" $v -}}{{- $text = trim $v -}}
{{- else if kindIs "float64" $v -}}
{{- if and (eq (floor $v) $v) (lt $v 1e15) (ge $v 0.0) -}}{{- $text = printf "%.0f" $v -}}{{- else -}}{{- $text = printf "%v" $v -}}{{- end -}}
{{- else if or (kindIs "int64" $v) (kindIs "int" $v) (kindIs "float32" $v) -}}{{- $text = printf "%v" $v -}}
{{- else -}}{{- fail (printf "%s must be a number, not %s" $name (include "slo-pr.shown" $v)) -}}
{{- end -}}
{{- if and (hasKey . "min") (regexMatch "^-[0-9]+(\\.[0-9]+)?$" $text) -}}
{{- fail (printf "%s must be %s %v, not %s%s" $name (ternary "greater than" "at least" (default false .minExclusive)) .min $text (default "" .hint)) -}}
{{- end -}}
{{- $pattern := ternary "^[0-9]+$" "^[0-9]+(\\.[0-9]+)?$" (default false .integer) -}}
{{- if not (regexMatch $pattern $text) -}}
{{- if .integer -}}
{{- fail (printf "%s must be a whole number written with digits only (e.g. 8), not %s%s" $name (include "slo-pr.shown" $text) (default "" .hint)) -}}
{{- else -}}
{{- fail (printf "%s must be a number written with digits and at most one '.' (e.g. 50 or 12.5), not %s%s" $name (include "slo-pr.shown" $text) (default "" .hint)) -}}
{{- end -}}
{{- end -}}
{{- if gt (len (replace "." "" $text)) 15 -}}
{{- fail (printf "%s %s has more than 15 digits: slogate cannot keep a number that long exactly; write at most 15 digits" $name (include "slo-pr.shown" $text)) -}}
{{- end -}}
{{- $x := float64 $text -}}
{{- if hasKey . "min" -}}
{{- if or (lt $x (float64 .min)) (and .minExclusive (eq $x (float64 .min))) -}}
{{- fail (printf "%s must be %s %v, not %s%s" $name (ternary "greater than" "at least" (default false .minExclusive)) .min $text (default "" .hint)) -}}
{{- end -}}
{{- end -}}
{{- if hasKey . "max" -}}
{{- if or (gt $x (float64 .max)) (and .maxExclusive (eq $x (float64 .max))) -}}
{{- fail (printf "%s must be %s %v, not %s%s" $name (ternary "less than" "at most" (default false .maxExclusive)) .max $text (default "" .hint)) -}}
{{- end -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/*
The runner's image reference, refused when the repository or tag could not be pulled by
any runtime (a space, an empty part).
*/}}
{{- define "slo-pr.image" -}}
{{- $repo := .Values.image.repository -}}
{{- $tag := toString (.Values.image.tag | default .Chart.AppVersion) -}}
{{- if not (regexMatch "^[a-z0-9]+([._-]+[a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$" $repo) -}}
{{- fail (printf "image.repository %s is not an image repository: lowercase letters, digits and '.', '_', '-' between them, parts separated by '/', e.g. ghcr.io/slogate/slogate" (include "slo-pr.shown" $repo)) -}}
{{- end -}}
{{- if not (regexMatch "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$" $tag) -}}
{{- fail (printf "image.tag %s is not an image tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (e.g. 0.3.0)" (include "slo-pr.shown" $tag)) -}}
{{- end -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/*
The API group of an apiVersion: "" for the core group (v1).
*/}}
{{- define "slo-pr.apiGroup" -}}
{{- if contains "/" . -}}{{- first (splitList "/" .) -}}{{- end -}}
{{- end -}}

{{/*
The resource (plural) of an object reference: its `resource` when given, else the kind in
lower case with an s (Deployment → deployments, HTTPRoute → httproutes).
*/}}
{{- define "slo-pr.resource" -}}
{{- if .resource -}}{{- .resource -}}{{- else -}}{{- printf "%ss" (lower .kind) -}}{{- end -}}
{{- end -}}

{{/*
RBAC rules for the objects the experiment reads and patches, one rule per object, only for
those in namespace .ns: get/patch on each weight object, get on each readiness object.
Call with (dict "root" $ "ns" NAMESPACE).
*/}}
{{- define "slo-pr.objectRules" -}}
{{- $v := .root.Values -}}
{{- $ns := .ns -}}
{{- $home := .root.Release.Namespace -}}
{{- range $ref := list $v.baselineWeightObjRef $v.candidateWeightObjRef -}}
{{- if and $ref (eq (default $home $ref.namespace) $ns) }}
- apiGroups: [{{ include "slo-pr.apiGroup" $ref.apiVersion | quote }}]
  resources: [{{ include "slo-pr.resource" $ref | quote }}]
  resourceNames: [{{ $ref.name | quote }}]
  verbs: [get, patch]
{{- end -}}
{{- end -}}
{{- if $v.readiness -}}
{{- range $o := $v.readiness.objects -}}
{{- if eq (default $home $o.namespace) $ns }}
- apiGroups: [{{ include "slo-pr.apiGroup" $o.apiVersion | quote }}]
  resources: [{{ include "slo-pr.resource" $o | quote }}]
  resourceNames: [{{ $o.name | quote }}]
  verbs: [get]
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The namespaces other than the release's that the weight and readiness objects are in.
*/}}
{{- define "slo-pr.otherNamespaces" -}}
{{- $v := .Values -}}
{{- $home := .Release.Namespace -}}
{{- $all := list -}}
{{- range $ref := list $v.baselineWeightObjRef $v.candidateWeightObjRef -}}
{{- if and $ref $ref.namespace (ne $ref.namespace $home) -}}{{- $all = append $all $ref.namespace -}}{{- end -}}
{{- end -}}
{{- if $v.readiness -}}
{{- range $o := $v.readiness.objects -}}
{{- if and $o.namespace (ne $o.namespace $home) -}}{{- $all = append $all $o.namespace -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $all | uniq | join " " -}}
{{- end -}}

{{/*
"true" when a finish action runs helm (its cmd is helm, or a path ending in /helm).
*/}}
{{- define "slo-pr.helmAction" -}}
{{- range $a := .Values.actions -}}
{{- if and $a.exec (eq (base (toString $a.exec.cmd)) "helm") -}}true{{- end -}}
{{- end -}}
{{- end -}}
