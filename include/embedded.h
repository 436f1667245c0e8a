/* Text files compiled into the binary (SQL migrations, built-in templates). */
#pragma once

struct embedded_text {
        const char *name;
        const char *text;
};

/* sql/NNN-*.sql in order */
extern const struct embedded_text embedded_migrations[];
/* sql/scratch.sql: the connection's temporary tables */
extern const struct embedded_text embedded_scratch[];
/* conf/templates/ *.txt */
extern const struct embedded_text embedded_templates[];
