{{/*
Names and labels shared by every object. Values reach YAML through toJson (JSON is YAML
flow syntax), so a value can never open a new key or document. The selector holds only the
stable keys: it must never change between releases.
*/}}
{{- define "model-api.name" -}}
{{- .Chart.Name | trunc 63 -}}
{{- end -}}

{{/* Label values allow [A-Za-z0-9._-]; semver build metadata uses '+'. */}}
{{- define "model-api.versionLabel" -}}
{{- .Values.releaseTag | replace "+" "_" | trunc 63 -}}
{{- end -}}

{{- define "model-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-api.name" . | toJson }}
app.kubernetes.io/instance: {{ .Release.Name | toJson }}
{{- end -}}

{{- define "model-api.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | toJson }}
{{ include "model-api.selectorLabels" . }}
app.kubernetes.io/version: {{ include "model-api.versionLabel" . | toJson }}
app.kubernetes.io/component: "api"
app.kubernetes.io/part-of: {{ include "model-api.name" . | toJson }}
app.kubernetes.io/managed-by: {{ .Release.Service | toJson }}
{{- end -}}

{{/*
Blue/green (.Values.blueGreen, written by releasegate: the slot to deploy to and the one the
Service selects now). Each slot is an instance of its own, "<release>-<slot>", labelled
releasegate.dev/slot, so a slot's pods are selected only by what names that slot, never by an
earlier rolling Deployment's or Service's selector. Without blueGreen these are the plain ones.
*/}}
{{/*
Canary (.Values.canary, written by releasegate: the track and how traffic reaches it). The
stable Deployment keeps the plain instance and selector (a Deployment's selector cannot change)
and labels its pods releasegate.dev/track: stable; the canary is an instance of its own,
"<release>-canary", so nothing stable selects its pods.
*/}}
{{- define "model-api.canaryTrack" -}}
{{- if and .Values.canary (eq .Values.canary.track "canary") -}}true{{- end -}}
{{- end -}}

{{- define "model-api.workload" -}}
{{- if .Values.blueGreen -}}
{{- printf "%s-%s" (include "model-api.name" .) .Values.blueGreen.slot -}}
{{- else if include "model-api.canaryTrack" . -}}
{{- printf "%s-canary" (include "model-api.name" .) -}}
{{- else -}}
{{- include "model-api.name" . -}}
{{- end -}}
{{- end -}}

{{- define "model-api.workloadSelectorLabels" -}}
{{- if .Values.blueGreen -}}
app.kubernetes.io/name: {{ include "model-api.name" . | toJson }}
app.kubernetes.io/instance: {{ printf "%s-%s" .Release.Name .Values.blueGreen.slot | toJson }}
releasegate.dev/slot: {{ .Values.blueGreen.slot | toJson }}
{{- else if include "model-api.canaryTrack" . -}}
app.kubernetes.io/name: {{ include "model-api.name" . | toJson }}
app.kubernetes.io/instance: {{ printf "%s-canary" .Release.Name | toJson }}
releasegate.dev/track: "canary"
{{- else -}}
{{ include "model-api.selectorLabels" . }}
{{- end -}}
{{- end -}}

{{- define "model-api.workloadLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | toJson }}
{{ include "model-api.workloadSelectorLabels" . }}
app.kubernetes.io/version: {{ include "model-api.versionLabel" . | toJson }}
app.kubernetes.io/component: "api"
app.kubernetes.io/part-of: {{ include "model-api.name" . | toJson }}
app.kubernetes.io/managed-by: {{ .Release.Service | toJson }}
{{- if and .Values.canary (eq .Values.canary.track "stable") }}
releasegate.dev/track: "stable"
{{- end }}
{{- end -}}

{{/* What a blue/green Service selects: every pod of one slot. */}}
{{- define "model-api.slotSelectorLabels" -}}
app.kubernetes.io/name: {{ include "model-api.name" .root | toJson }}
releasegate.dev/slot: {{ .slot | toJson }}
{{- end -}}

{{/* What a canary track Service selects: every pod of one track. */}}
{{- define "model-api.trackSelectorLabels" -}}
app.kubernetes.io/name: {{ include "model-api.name" .root | toJson }}
releasegate.dev/track: {{ .track | toJson }}
{{- end -}}
