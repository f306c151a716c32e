--! needs: shared
-- ngx.shared: nginx declares dictionaries in its configuration; none is declared
-- for these cases (DECISIONS 8: cosocket creates them on first use)
out(type(ngx.shared))
out(type(ngx.shared.cases))
