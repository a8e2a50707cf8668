"""What deploys a release: rendering (templates or the Helm chart), skaffold, and the door every
program is started through.

Layer: adapter for what deploys: templates, helm, skaffold, programs (imports only core and deploy/).
"""
