//! Regions (province to grid) and departments, and who holds which post.

use super::*;

kernel::area! {
    /// Regions (province to grid) and departments, and who holds which post.
    Organisation of Identity
}

impl Organisation<'_> {
    // --- organisation --------------------------------------------------------------------

    /// Creates a region under `parent_code` (or the province root). Codes follow the
    /// administrative division scheme: a child's code extends its parent's.
    pub async fn create_region_in(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<OrganisationManage>,
        code: &str,
        name: &str,
        parent_code: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RegionRef, Error> {
        let code = code.trim();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid("name", "must be 1–64 characters"));
        }
        let (level, parent) = match parent_code {
            None => (RegionLevel::Province, None),
            Some(pc) => {
                let parent = repo::region_by_code(c, pc).await?.ok_or(Error::NotFound("parent region"))?;
                let level = level_of(&parent.level)
                    .and_then(RegionLevel::child)
                    .ok_or_else(|| Error::invalid("parent_code", "a grid has no sub-regions"))?;
                (level, Some(parent))
            }
        };
        // A new region lies under one the administrator already governs.
        cap.check_record(parent.as_ref().map_or("/", |p| p.path.as_str()), 1)?;
        if code.len() != level.code_len() || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("code", format!("a {} code has {} digits", level.as_str(), level.code_len())));
        }
        if let Some(p) = &parent {
            let shared = match level {
                RegionLevel::City => 2,
                RegionLevel::District => 4,
                _ => p.code.len(),
            };
            if code.get(..shared) != p.code.get(..shared) || code == p.code {
                return Err(Error::invalid("code", format!("must extend the parent code {}", p.code)));
            }
        }
        if repo::region_by_code(c, code).await?.is_some() {
            return Err(Error::Conflict {
                code: ErrorCode::RegionExists,
                message: format!("region {code} already exists"),
            });
        }
        let path = format!("{}{code}/", parent.as_ref().map(|p| p.path.as_str()).unwrap_or("/"));
        let id = new_id();
        repo::insert_region(c, &id, code, name, level.as_str(), parent.as_ref().map(|p| p.id.as_str()), &path).await?;
        record(
            c,
            Event::new(Action::RegionCreated, Outcome::Success).account(cap.account_id()).object(&path).detail(name),
            now,
        )
        .await?;
        Ok(RegionRef { id, code: code.into(), name: name.into(), level: level.as_str().into(), path })
    }

    pub async fn create_department_in(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<OrganisationManage>,
        new: NewDepartment<'_>,
        now: DateTime<Utc>,
    ) -> Result<DepartmentRef, Error> {
        let NewDepartment { code, name, region_code, kind } = new;
        let region = repo::region_by_code(c, region_code).await?.ok_or(Error::NotFound("region"))?;
        cap.check_record(&region.path, 1)?;
        if code.trim().is_empty() || name.trim().is_empty() {
            return Err(Error::invalid("code", "code and name are required"));
        }
        if repo::department_by_code(c, code).await?.is_some() {
            return Err(Error::Conflict {
                code: ErrorCode::DepartmentExists,
                message: format!("department {code} already exists"),
            });
        }
        let id = new_id();
        repo::insert_department(c, &id, code.trim(), name.trim(), &region.id, kind).await?;
        let event =
            Event::new(Action::DepartmentCreated, Outcome::Success).account(cap.account_id()).object(code.trim());
        record(c, event.detail(name.trim()), now).await?;
        Ok(DepartmentRef { id, code: code.trim().into(), name: name.trim().into() })
    }

    pub async fn region_count(&self) -> Result<i64, Error> {
        Ok(repo::region_count(&mut *self.conn().await?).await?)
    }

    /// The region tree the caller may see: their subtree, or everything.
    pub async fn regions(&self, cap: &Capability<OrganisationRead>) -> Result<Vec<RegionRef>, Error> {
        let mut c = self.conn().await?;
        let root = match cap.scope() {
            crate::Scope::All => "/".to_string(),
            crate::Scope::Subtree(p) => p.clone(),
        };
        Ok(repo::regions_in_subtree(&mut c, &root).await?)
    }

    /// The places a resident may name for where something happened: their district and its
    /// streets and communities (region names are public; grids are the staff's business).
    pub async fn places_near(&self, region_path: &str) -> Result<Vec<RegionRef>, Error> {
        let segments: Vec<&str> = region_path.split('/').filter(|s| !s.is_empty()).collect();
        let district = match segments.as_slice() {
            [province, city, district, ..] => format!("/{province}/{city}/{district}/"),
            _ => region_path.to_string(),
        };
        let mut c = self.conn().await?;
        let regions = repo::regions_in_subtree(&mut c, &district).await?;
        Ok(regions.into_iter().filter(|r| r.level != "grid").collect())
    }

    pub async fn departments(&self, cap: &Capability<OrganisationRead>) -> Result<Vec<DepartmentView>, Error> {
        let mut c = self.conn().await?;
        let root = match cap.scope() {
            crate::Scope::All => "/".to_string(),
            crate::Scope::Subtree(p) => p.clone(),
        };
        Ok(repo::departments_in_subtree(&mut c, &root)
            .await?
            .into_iter()
            .map(|(d, region_name)| DepartmentView { id: d.id, code: d.code, name: d.name, region_name })
            .collect())
    }

    /// A region's path (`/990000/990100/990102/`) by its code.
    pub async fn region_path(&self, code: &str) -> Result<String, Error> {
        let mut c = self.conn().await?;
        Ok(repo::region_by_code(&mut c, code).await?.ok_or(Error::NotFound("region"))?.path)
    }

    /// The regions one level below a region (region names are public).
    pub async fn subregions(&self, path: &str) -> Result<Vec<RegionRef>, Error> {
        let mut c = self.conn().await?;
        let depth = path.matches('/').count() + 1;
        Ok(repo::regions_in_subtree(&mut c, path)
            .await?
            .into_iter()
            .filter(|r| r.path.matches('/').count() == depth)
            .collect())
    }

    /// The departments placed in a region subtree (department names are public).
    pub async fn departments_under(&self, path: &str) -> Result<Vec<DepartmentRef>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::departments_in_subtree(&mut c, path).await?.into_iter().map(|(d, _)| d).collect())
    }

    /// A department by its code, with its region's path and its line of work (`MZ`, `GA`, …).
    pub async fn placed_department(&self, code: &str) -> Result<Option<crate::PlacedDepartment>, Error> {
        self.placed(repo::DepartmentKey::Code, code).await
    }

    /// [`Organisation::placed_department`] by the department's id.
    pub async fn placed_department_by_id(&self, id: &str) -> Result<Option<crate::PlacedDepartment>, Error> {
        self.placed(repo::DepartmentKey::Id, id).await
    }

    async fn placed(&self, key: repo::DepartmentKey, value: &str) -> Result<Option<crate::PlacedDepartment>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::department_placed(&mut c, key, value)
            .await?
            .map(|(department, region_path, kind)| crate::PlacedDepartment { department, region_path, kind }))
    }

    /// A region by its code, on the caller's connection.
    pub async fn region_in(&self, c: &mut AnyConnection, code: &str) -> Result<Option<RegionRef>, Error> {
        Ok(repo::region_by_code(c, code).await?)
    }

    /// A department by its code, on the caller's connection.
    pub async fn department_by_code_in(
        &self,
        c: &mut AnyConnection,
        code: &str,
    ) -> Result<Option<DepartmentRef>, Error> {
        Ok(repo::department_by_code(c, code).await?.map(|(d, _)| d))
    }

    /// A department's name, on the caller's connection.
    pub async fn department_name_in(
        &self,
        c: &mut AnyConnection,
        department_id: &str,
    ) -> Result<Option<String>, Error> {
        Ok(repo::department_name(c, department_id).await?)
    }

    pub async fn department_name(&self, department_id: &str) -> Result<Option<String>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::department_name(&mut c, department_id).await?)
    }

    /// A staff member's department and role codes (for handing work to a colleague).
    pub async fn staff_post(&self, account_id: &str) -> Result<Option<(Option<String>, Vec<String>)>, Error> {
        let mut c = self.conn().await?;
        let Some(account) = repo::account(&mut c, account_id).await? else { return Ok(None) };
        if account.kind != AccountKind::Staff {
            return Ok(None);
        }
        let roles = repo::role_codes_of(&mut c, account_id).await?.into_iter().map(|(r, _)| r).collect();
        Ok(Some((account.department.map(|d| d.id), roles)))
    }

    /// Staff of a department holding a role (account id, display name): the colleagues a
    /// task can go to, and the supervisors told of an escalation.
    pub async fn staff_holding(&self, department_id: &str, role: &str) -> Result<Vec<(String, String)>, Error> {
        let mut c = self.conn().await?;
        Ok(repo::staff_holding(&mut c, department_id, role).await?)
    }

    /// The department of `kind` (its line of work) nearest a region: in it or above it.
    pub async fn nearest_department(&self, region_path: &str, kind: &str) -> Result<Option<DepartmentRef>, Error> {
        let mut c = self.conn().await?;
        self.nearest_department_in(&mut c, region_path, kind).await
    }

    /// [`Identity::nearest_department`] on the caller's connection (or transaction).
    pub async fn nearest_department_in(
        &self,
        c: &mut AnyConnection,
        region_path: &str,
        kind: &str,
    ) -> Result<Option<DepartmentRef>, Error> {
        Ok(repo::nearest_department(c, region_path, kind).await?)
    }
}
