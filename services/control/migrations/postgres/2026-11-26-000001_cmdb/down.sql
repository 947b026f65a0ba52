DROP TABLE ci_relations;
DROP TABLE cis;
