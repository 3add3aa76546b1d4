"""Authentication and authorization for labkit's apiserver (issue 12).

One module per job: :mod:`.pki` (the cluster's CA and certificates), :mod:`.tokens` (the static
token file), :mod:`.serviceaccounts` (TokenRequest tokens), :mod:`.authn` (who is asking),
:mod:`.attributes` (what they ask, and the 403 wording), :mod:`.rbac` and :mod:`.node` (the
authorizers), :mod:`.bootstrap` (default roles), :mod:`.reviews` (can-i, whoami, create token),
:mod:`.middleware` (all of it as the apiserver's filter) and :mod:`.setup` (wiring it into a server).
Nothing is imported here: a server without authentication never loads ``cryptography``.
"""
