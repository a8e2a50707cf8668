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
