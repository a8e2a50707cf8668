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
{{- define "model-api.workload" -}}
{{- if .Values.blueGreen -}}
{{- printf "%s-%s" (include "model-api.name" .) .Values.blueGreen.slot -}}
{{- else -}}
{{- include "model-api.name" . -}}
{{- end -}}
{{- end -}}

{{- define "model-api.workloadSelectorLabels" -}}
{{- if .Values.blueGreen -}}
app.kubernetes.io/name: {{ include "model-api.name" . | toJson }}
app.kubernetes.io/instance: {{ printf "%s-%s" .Release.Name .Values.blueGreen.slot | toJson }}
releasegate.dev/slot: {{ .Values.blueGreen.slot | toJson }}
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
{{- end -}}

{{/* What a blue/green Service selects: every pod of one slot. */}}
{{- define "model-api.slotSelectorLabels" -}}
app.kubernetes.io/name: {{ include "model-api.name" .root | toJson }}
releasegate.dev/slot: {{ .slot | toJson }}
{{- end -}}
