{{/* Release-scoped name prefix. */}}
{{- define "rlmbox.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "rlmbox.inferenceName" -}}{{ include "rlmbox.fullname" . }}-inference{{- end -}}
{{- define "rlmbox.executionName" -}}{{ include "rlmbox.fullname" . }}-wasm-repl{{- end -}}
{{- define "rlmbox.llmSecretName" -}}{{ default (printf "%s-llm" (include "rlmbox.fullname" .)) .Values.llm.existingSecret }}{{- end -}}
{{- define "rlmbox.tokenSecretName" -}}{{ default (printf "%s-exec-token" (include "rlmbox.fullname" .)) .Values.execToken.existingSecret }}{{- end -}}

{{/* Selector labels of one plane: include "rlmbox.selectorLabels" (list . "inference") */}}
{{- define "rlmbox.selectorLabels" -}}
app.kubernetes.io/name: rlmbox
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "rlmbox.labels" -}}
{{ include "rlmbox.selectorLabels" . }}
app.kubernetes.io/part-of: rlmbox
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
{{- end -}}

{{- define "rlmbox.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ required "image.tag must be set (pinned)" .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "rlmbox.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
fsGroup: {{ .Values.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "rlmbox.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.runAsUser }}
runAsGroup: {{ .Values.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The execution plane's environment (serve-exec), shared by both topologies. */}}
{{- define "rlmbox.executionEnv" -}}
- name: MAX_SESSIONS
  value: {{ .Values.execution.maxSessions | quote }}
- name: SESSION_TTL
  value: {{ .Values.execution.sessionTtl | quote }}
- name: EXECUTION_TIMEOUT
  value: {{ .Values.execution.executionTimeout | quote }}
- name: MAX_REQUEST_BYTES
  value: {{ .Values.execution.maxRequestBytes | int64 | quote }}
- name: MAX_CONNECTIONS_PER_CLIENT
  value: {{ .Values.execution.maxConnectionsPerClient | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}
