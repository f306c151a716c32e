-- ngx.quote_sql_str: MySQL escapes inside single quotes; bytes >= 0x80 kept
out(ngx.quote_sql_str("a'b\"c\\d\0e\n\r\t\26f\bg"))
out(ngx.quote_sql_str(""), ngx.quote_sql_str("plain"), ngx.quote_sql_str("é\255"))
out(ngx.quote_sql_str(12), ngx.quote_sql_str(1.5))
out(pcall(function() return (ngx.quote_sql_str(nil)) end))
out(pcall(function() return (ngx.quote_sql_str(true)) end))
out(pcall(function() return (ngx.quote_sql_str()) end))
out(pcall(function() return (ngx.quote_sql_str("a", "b")) end))
